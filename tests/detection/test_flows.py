"""The fast address helpers on every flow's path agree with the standard library's ipaddress."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from machimori.detection.flows import LOCAL_NETWORKS, ipv4_number, is_local_address
from machimori.detection.scoring import Darknet
from machimori.detection.zeek import is_address


def reference_local(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in LOCAL_NETWORKS)


@given(st.ip_addresses(v=4).map(str))
def test_an_ipv4_address_is_numbered_and_judged_local_as_ipaddress_does(text: str) -> None:
    assert ipv4_number(text) == int(ipaddress.IPv4Address(text))
    assert is_local_address(text) == reference_local(text)
    assert is_address(text)


@given(st.ip_addresses(v=6).map(str))
def test_an_ipv6_address_is_judged_as_ipaddress_does(text: str) -> None:
    assert ipv4_number(text) is None
    assert is_local_address(text) == reference_local(text)
    assert is_address(text)


@given(st.text(alphabet="0123456789.:abcdef x+-%", max_size=20))
def test_text_that_is_not_an_address_is_never_taken_for_one(text: str) -> None:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
        valid = True
    except ValueError:
        valid = False
    if not valid:
        assert ipv4_number(text) is None and not is_local_address(text)
        assert not is_address(text)


def test_leading_zeros_and_out_of_range_octets_are_not_ipv4() -> None:
    for text in ("010.0.0.1", "256.1.1.1", "1.1.1", "1.1.1.1.1", "１.1.1.1", "+1.1.1.1", " 1.1.1.1", ""):
        assert ipv4_number(text) is None, text


@given(st.ip_addresses().map(str))
def test_the_darknet_contains_what_ipaddress_says_it_contains(text: str) -> None:
    darknet = Darknet(["10.20.99.0/24", "198.51.100.128/25", "2001:db8:dead::/48"])
    ip = ipaddress.ip_address(text)
    assert darknet.contains(text) == any(ip in network for network in darknet.networks if network.version == ip.version)
