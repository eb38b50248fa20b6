"""Light protocol guesses from a connection's first payload bytes (like Zeek's DPD), and the answers in DNS replies."""

from __future__ import annotations

import re
import socket
from typing import Any

import dpkt  # type: ignore[import-untyped]

TCP, UDP = 6, 17
#: Ports DNS is spoken on (Zeek's DNS analyzer also takes mDNS and LLMNR; both log as "dns").
DNS_PORTS = frozenset({53, 5353, 5355})
_HTTP = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"HTTP/1.")
# IRC: a client's registration or a server's prefixed message (":irc.example 001 nick ...", ":srv NOTICE ...").
_IRC = re.compile(
    rb"(?:NICK [^\s:]|USER \S+ \S+ \S+ :|JOIN [#&]|PRIVMSG \S|PING :|PONG :"
    rb"|:\S+ (?:\d{3}|NOTICE|PRIVMSG|PING|JOIN|MODE) )"
)
_DHCP_COOKIE = b"\x63\x82\x53\x63"


def guess_service(proto: int, sport: int, dport: int, payload: bytes) -> str:
    """The protocol a payload looks like (Zeek's service names: dns, ntp, dhcp, ssh, ssl, http, irc…), or ""."""
    if proto not in (TCP, UDP) or not payload:
        return ""
    if (sport in DNS_PORTS or dport in DNS_PORTS) and parse_dns(payload, proto == TCP) is not None:
        return "dns"
    if proto == UDP:
        return _udp_service(sport, dport, payload)
    if payload.startswith(b"SSH-"):
        return "ssh"
    if payload[:2] == b"\x16\x03":
        return "ssl"  # a TLS handshake record; Zeek calls the service "ssl"
    if payload.startswith(_HTTP):
        return "http"
    if len(payload) > 1 and payload[0] == 0xFF and 0xFB <= payload[1] <= 0xFE:
        return "telnet"  # an IAC WILL/WONT/DO/DONT negotiation
    if _IRC.match(payload) or (payload.startswith(b"PASS ") and b"NICK " in payload):
        return "irc"
    return ""


def _udp_service(sport: int, dport: int, payload: bytes) -> str:
    ports = (sport, dport)
    if 123 in ports and len(payload) >= 48 and 1 <= (payload[0] >> 3) & 7 <= 4 and 1 <= payload[0] & 7 <= 5:
        return "ntp"
    if (67 in ports or 68 in ports) and payload[236:240] == _DHCP_COOKIE:
        return "dhcp"
    return ""


def parse_dns(payload: bytes, tcp: bool) -> Any | None:
    """A DNS message (dpkt's) with at least one question, or None when the bytes are not one."""
    if tcp:
        size = int.from_bytes(payload[:2], "big")
        payload = payload[2 : 2 + size]
        if len(payload) != size:
            return None
    if len(payload) < 12:
        return None
    try:
        message = dpkt.dns.DNS(payload)
    except Exception:  # dpkt raises many kinds of errors on bytes that are not DNS
        return None
    return message if message.qd else None


def dns_response(payload: bytes, tcp: bool) -> tuple[str, list[str]] | None:
    """(query name in lower case, [A and AAAA addresses]) of a DNS response, or None for anything else."""
    message = parse_dns(payload, tcp)
    if message is None or message.qr != dpkt.dns.DNS_R:
        return None
    addresses = []
    for answer in message.an:
        if answer.type == dpkt.dns.DNS_A and len(answer.rdata) == 4:
            addresses.append(socket.inet_ntop(socket.AF_INET, answer.rdata))
        elif answer.type == dpkt.dns.DNS_AAAA and len(answer.rdata) == 16:
            addresses.append(socket.inet_ntop(socket.AF_INET6, answer.rdata))
    return str(message.qd[0].name).lower().rstrip("."), addresses
