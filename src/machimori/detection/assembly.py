"""Connection tracking: decoded packets become Zeek-like flows as their connections end, in bounded memory."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import socket
from collections import OrderedDict
from collections.abc import Callable, Sequence

from machimori.detection.connection import (
    ACK,
    ICMP,
    ICMP6,
    INACTIVE,
    SYN,
    SYN_ACK_SENT,
    SYN_SENT,
    TCP,
    UDP,
    Connection,
    Packet,
    conn_state,
    is_reuse,
    track_tcp,
)
from machimori.detection.flows import Flow
from machimori.detection.protocols import dns_response, guess_service

#: Zeek's inactivity timeouts per protocol.
TCP_TIMEOUT, UDP_TIMEOUT, ICMP_TIMEOUT = 300.0, 60.0, 60.0
#: Most connections tracked at once; past it the longest idle are ended as they are (memory stays bounded).
MAX_CONNECTIONS = 200_000

_PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMP6: "icmp"}
_TIMEOUTS = {TCP: TCP_TIMEOUT, UDP: UDP_TIMEOUT, ICMP: ICMP_TIMEOUT, ICMP6: ICMP_TIMEOUT}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: Ports a server is likely to listen on: a flow first seen from one of them is turned round (Zeek's heuristic).
SERVER_PORTS = frozenset(
    {21, 22, 23, 25, 53, 67, 68, 69, 80, 88, 110, 123, 137, 143, 161, 389, 443, 445, 465, 502, 514, 554, 587, 993, 995}
    | {546, 547, 1883, 1900, 2323, 3306, 3389, 5060, 5353, 5355, 5432, 5683, 6379, 6667, 6668, 6669, 8080, 8443, 8883}
)

DnsCallback = Callable[[str, list[str]], None]


class FlowTable:
    """Tracks connections like Zeek and hands back each as a flow when it ends, times out or is pushed out.

    Left out compared with Zeek: checksums are not verified (history C), IP fragments are not reassembled,
    TCP content gaps (G) and missed_bytes are not computed, the SYN/SYN-ACK reversal inside a connection is
    not undone, tunnels are not opened. A connection whose first packet is a SYN-ACK is turned round
    (Zeek does so only when the sender's port is a likely server port).
    """

    def __init__(self, max_connections: int = MAX_CONNECTIONS, dns_answers: DnsCallback | None = None) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.dns_answers = dns_answers
        self.table: OrderedDict[tuple[object, ...], Connection] = OrderedDict()  # least recently active first
        self.timers: list[tuple[float, int, Connection]] = []
        self.counter = itertools.count()
        self.now = float("-inf")
        self.peak = 0
        self._out: list[Flow] = []

    def __len__(self) -> int:
        return len(self.table)

    def add(self, p: Packet) -> Sequence[Flow]:
        """Account one packet; the flows that ended by its time (timeouts, closes, the table's cap)."""
        if p.ts > self.now:
            self.now = p.ts
            if self.timers and self.timers[0][0] <= p.ts:
                self._expire(p.ts)
        key = _key(p)
        conn = self.table.get(key)
        if conn is not None:
            self.table.move_to_end(key)
            if p.proto == TCP and is_reuse(conn, p):
                self._finish(conn)
                conn = None
        if conn is None:
            conn = self._open(key, p)
        is_orig = p.src == conn.orig_h and p.sport == conn.orig_p
        self._account(conn, p, is_orig)
        if not self._out:
            return ()
        out, self._out = self._out, []
        return out

    def flush(self) -> list[Flow]:
        """End every connection still tracked (the end of the capture): their flows, by start time."""
        conns = sorted(self.table.values(), key=lambda c: c.start)
        self.table.clear()
        self.timers.clear()
        out, self._out = self._out, []
        return [*out, *(_flow(c) for c in conns)]

    def _open(self, key: tuple[object, ...], p: Packet) -> Connection:
        while len(self.table) >= self.max_connections:
            self._finish(self.table.popitem(last=False)[1], tracked=False)
        conn = Connection(key, p, _flip(p))
        self.table[key] = conn
        self.peak = max(self.peak, len(self.table))
        self._schedule(conn, p.ts + _TIMEOUTS[p.proto])
        if len(self.timers) > 2 * len(self.table) + 1024:  # timers of connections already gone: drop them
            self.timers = [(_deadline(c), next(self.counter), c) for c in self.table.values()]
            heapq.heapify(self.timers)
        return conn

    def _account(self, conn: Connection, p: Packet, is_orig: bool) -> None:
        side = conn.orig if is_orig else conn.resp
        side.pkts += 1
        side.ip_bytes += p.ip_bytes
        conn.last_seen = p.ts
        if p.proto == TCP:
            before = (conn.attempt_at, conn.close_at)
            track_tcp(conn, p, is_orig)
            if (conn.attempt_at, conn.close_at) != before:
                self._schedule(conn, _deadline(conn))
        else:
            conn.last_time = p.ts
            side.size += max(p.length, 0)
            if p.proto == UDP:
                conn.check("D" if is_orig else "d")
        if p.payload and not side.probed and not conn.service:
            side.probed = True
            conn.service = guess_service(p.proto, p.sport, p.dport, p.payload)
        if self.dns_answers is not None and p.sport == 53 and p.payload and p.proto in (TCP, UDP):
            answer = dns_response(p.payload, p.proto == TCP)
            if answer is not None:
                self.dns_answers(*answer)

    def _schedule(self, conn: Connection, at: float) -> None:
        heapq.heappush(self.timers, (at, next(self.counter), conn))

    def _expire(self, now: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= now:
            conn = heapq.heappop(timers)[2]
            if self.table.get(conn.key) is not conn:
                continue
            if conn.attempt_at is not None and conn.attempt_at <= now:
                conn.attempt_at = None
                if conn.orig.state in (SYN_SENT, SYN_ACK_SENT) and conn.resp.state == INACTIVE:
                    self._finish(conn)
                    continue
            deadline = _deadline(conn)
            if deadline <= now:
                self._finish(conn)
            else:
                self._schedule(conn, deadline)

    def _finish(self, conn: Connection, tracked: bool = True) -> None:
        if tracked:
            del self.table[conn.key]
        self._out.append(_flow(conn))


def _key(p: Packet) -> tuple[object, ...]:
    if p.one_way:
        return (p.proto, p.src, p.sport, p.dst, p.dport, True)
    if (p.src, p.sport) <= (p.dst, p.dport):
        return (p.proto, p.src, p.sport, p.dst, p.dport)
    return (p.proto, p.dst, p.dport, p.src, p.sport)


def _flip(p: Packet) -> bool:
    """Whether the first packet's receiver is the originator: a SYN-ACK, or a reply from a server's port."""
    if p.proto == TCP:
        if p.flags & SYN:
            return bool(p.flags & ACK)
    elif p.proto != UDP:
        return False
    if p.sport not in SERVER_PORTS:
        return False
    return p.dport not in SERVER_PORTS or (p.proto == TCP and p.sport < p.dport)


def _deadline(conn: Connection) -> float:
    idle = conn.last_seen + _TIMEOUTS[conn.proto]
    if conn.close_at is not None:
        return min(conn.close_at, idle)
    return conn.attempt_at if conn.attempt_at is not None else idle


def _address(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def flow_uid(proto: str, orig_h: str, orig_p: int, resp_h: str, resp_p: int, ts: float) -> str:
    """A Zeek-like uid ("C" and base62) from the 5-tuple and start time: the same capture gives the same uids."""
    text = f"{proto}|{orig_h}|{orig_p}|{resp_h}|{resp_p}|{ts:.6f}".encode()
    number = int.from_bytes(hashlib.blake2b(text, digest_size=12).digest(), "big")
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_B62[digit])
    return "C" + "".join(reversed(digits)).rjust(17, "0")


def _flow(conn: Connection) -> Flow:
    """The flow record of a tracked connection."""
    proto = _PROTO_NAMES[conn.proto]
    orig_h, resp_h = _address(conn.orig_h), _address(conn.resp_h)
    duration = conn.last_time - conn.start
    if conn.proto == TCP:
        sizes = (conn.orig.tcp_size(conn.resp), conn.resp.tcp_size(conn.orig))
    else:
        sizes = (conn.orig.size, conn.resp.size)
    return Flow(
        ts=conn.start,
        uid=flow_uid(proto, orig_h, conn.orig_p, resp_h, conn.resp_p, conn.start),
        orig_h=orig_h,
        orig_p=conn.orig_p,
        resp_h=resp_h,
        resp_p=conn.resp_p,
        proto=proto,
        service=conn.service,
        duration=duration if duration > 0 else None,
        orig_bytes=sizes[0] if duration > 0 else None,
        resp_bytes=sizes[1] if duration > 0 else None,
        conn_state=conn_state(conn),
        history=conn.history,
        orig_pkts=conn.orig.pkts,
        orig_ip_bytes=conn.orig.ip_bytes,
        resp_pkts=conn.resp.pkts,
        resp_ip_bytes=conn.resp.ip_bytes,
    )
