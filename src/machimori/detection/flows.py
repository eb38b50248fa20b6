"""The flow record: one connection as Zeek's conn.log describes it, whatever it was read from."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

#: The conn.log fields machimori reads; any other column (a dataset's labels, say) is never read.
STANDARD_FIELDS = (
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
)

#: Zeek's connection states (conn_state), each with what it means.
CONN_STATES = {
    "S0": "connection attempt seen, no reply",
    "S1": "established, not terminated",
    "SF": "normal establishment and termination",
    "REJ": "connection attempt rejected",
    "S2": "established, close attempt by originator seen (no reply)",
    "S3": "established, close attempt by responder seen (no reply)",
    "RSTO": "established, originator aborted (RST)",
    "RSTR": "responder sent a RST",
    "RSTOS0": "originator sent a SYN then a RST, no SYN-ACK seen",
    "RSTRH": "responder sent a SYN-ACK then a RST, no SYN seen",
    "SH": "originator sent a SYN then a FIN, no SYN-ACK seen",
    "SHR": "responder sent a SYN-ACK then a FIN, no SYN seen",
    "OTH": "no SYN seen, midstream traffic",
}

#: States of an attempt that never got an answer or was refused: what scanners leave behind.
FAILED_STATES = frozenset({"S0", "REJ", "RSTOS0", "SH", "RSTR"})


@dataclass(slots=True)
class Flow:
    """One connection: who talked to whom, how much and how it ended (conn.log's standard fields)."""

    ts: float
    uid: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str
    service: str = ""
    duration: float | None = None
    orig_bytes: int | None = None
    resp_bytes: int | None = None
    conn_state: str = ""
    local_orig: bool | None = None
    local_resp: bool | None = None
    missed_bytes: int = 0
    history: str = ""
    orig_pkts: int = 0
    orig_ip_bytes: int = 0
    resp_pkts: int = 0
    resp_ip_bytes: int = 0

    @property
    def device_is_originator(self) -> bool:
        """Whether the local endpoint (the device) opened the connection."""
        if self.local_orig is not None and self.local_orig != self.local_resp:
            return self.local_orig
        return is_local_address(self.orig_h) or not is_local_address(self.resp_h)

    @property
    def device(self) -> str:
        """The local endpoint's address: the device this flow belongs to."""
        return self.orig_h if self.device_is_originator else self.resp_h

    @property
    def peer(self) -> str:
        """The other endpoint's address."""
        return self.resp_h if self.device_is_originator else self.orig_h


#: Networks that are inside a site: RFC 1918, shared address space (CGN), link-local, loopback, unique-local.
#: (Python's `is_private` also counts the documentation ranges, which are "public" in every example here.)
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


def ipv4_number(address: str) -> int | None:
    """The 32-bit number of a dotted-quad IPv4 address, or None if the text is not exactly one (no ipaddress:
    this is on the path of every flow)."""
    parts = address.split(".")
    if len(parts) != 4:
        return None
    number = 0
    for part in parts:
        if not (0 < len(part) <= 3 and part.isdigit() and part.isascii()) or (len(part) > 1 and part[0] == "0"):
            return None
        octet = int(part)
        if octet > 255:
            return None
        number = number << 8 | octet
    return number


@lru_cache(maxsize=65536)
def is_local_address(address: str) -> bool:
    """Whether an address is inside a site's own network (private, shared, link-local, loopback, unique-local)."""
    number = ipv4_number(address)
    if number is None:
        return _is_local_other(address)
    top = number >> 24
    return (
        top == 10
        or top == 127
        or number >> 20 == 0xAC1  # 172.16.0.0/12
        or number >> 16 == 0xC0A8  # 192.168.0.0/16
        or number >> 16 == 0xA9FE  # 169.254.0.0/16
        or number >> 22 == 0x191  # 100.64.0.0/10
    )


@lru_cache(maxsize=65536)
def _is_local_other(address: str) -> bool:
    """is_local_address for what is not a dotted quad: IPv6 (with a zone, or mapping an IPv4 address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in LOCAL_NETWORKS)
