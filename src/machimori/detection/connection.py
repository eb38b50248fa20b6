"""A connection as Zeek tracks it: its two endpoints, TCP states, history letters, sizes and conn_state.

The TCP endpoint states, the history letters, the sizes taken from sequence numbers and conn_state follow Zeek's
TCP analyzer (TCPSessionAdapter) and its base/protocols/conn script.
"""

from __future__ import annotations

import re
from typing import NamedTuple

TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
#: Zeek's waits: for an answer to a TCP attempt, and before a closed connection is ended.
ATTEMPT_DELAY = CLOSE_DELAY = 5.0
# TCP endpoint states, as Zeek names them (TCP_ENDPOINT_*).
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
_M32, _TOO_LARGE = 0xFFFFFFFF, 1 << 20
_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")
_KIND_BITS = {kind: 1 << bit for bit, kind in enumerate("SFRDAIQsfrdaiq")}
_MARKS = {SYN: "syn_mark", FIN: "fin_mark", RST: "rst_mark"}


class Packet(NamedTuple):
    """One decoded IP packet: addresses as bytes, ICMP type/counterpart as ports, lengths from the headers."""

    ts: float
    proto: int
    src: bytes
    sport: int
    dst: bytes
    dport: int
    ip_bytes: int
    length: int  # payload length per the headers (may exceed len(payload) when the capture cut the packet)
    payload: bytes
    flags: int = 0
    seq: int = 0
    ack: int = 0
    window: int = 1
    one_way: bool = False


class Endpoint:
    """One endpoint of a connection: what it sent and, for TCP, its state and sequence space."""

    __slots__ = (
        "ack32",
        "ack_rel",
        "did_close",
        "fin",
        "fin_mark",
        "ip_bytes",
        "last32",
        "last_rel",
        "pkts",
        "prev",
        "probed",
        "rst_mark",
        "rxmit",
        "size",
        "start",
        "state",
        "syn_mark",
        "zero_win",
    )

    def __init__(self) -> None:
        self.state = self.prev = INACTIVE
        self.start = self.last32 = self.ack32 = 0
        self.last_rel = self.ack_rel = self.size = self.fin = self.rxmit = self.zero_win = 0
        self.pkts = self.ip_bytes = 0
        self.did_close = self.probed = False
        # The relative sequence number of the last SYN, FIN and RST sent: a history letter again only at a new one.
        self.syn_mark: int | None = None
        self.fin_mark: int | None = None
        self.rst_mark: int | None = None

    def set(self, state: int) -> None:
        """Move to a state, remembering the one before (only when it changes, as Zeek does)."""
        if state != self.state:
            self.prev, self.state = self.state, state

    def init_seq(self, start: int, last: int) -> None:
        """Start this endpoint's sequence space at `start`, its highest sequence number seen at `last`."""
        self.start = self.ack32 = start
        self.last32 = last
        self.last_rel = _s32(last - start)
        self.ack_rel = 0

    def tcp_size(self, peer: Endpoint) -> int:
        """Payload bytes sent, from the sequence space (Zeek's TCP_Endpoint::Size)."""
        if self.prev == SYN_SENT and self.state == RESET and peer.state == INACTIVE:
            return 0
        size = max(self.last_rel, self.ack_rel)
        if size > 0:
            size -= 1
        if self.fin and size > 0:
            size -= 1
        return max(size, 0)


class Connection:
    """A connection being tracked."""

    __slots__ = (
        "attempt_at",
        "close_at",
        "history",
        "key",
        "last_seen",
        "last_time",
        "orig",
        "orig_h",
        "orig_p",
        "proto",
        "resp",
        "resp_h",
        "resp_p",
        "seen",
        "service",
        "start",
    )

    def __init__(self, key: tuple[object, ...], p: Packet, flip: bool) -> None:
        self.key, self.proto, self.start = key, p.proto, p.ts
        self.orig_h, self.orig_p, self.resp_h, self.resp_p = p.src, p.sport, p.dst, p.dport
        if flip:
            self.orig_h, self.orig_p, self.resp_h, self.resp_p = p.dst, p.dport, p.src, p.sport
        self.last_time = self.last_seen = p.ts
        self.orig, self.resp = Endpoint(), Endpoint()
        self.history = "^" if flip else ""
        self.seen = 0  # the history letters' kinds recorded, as bits
        self.service = ""
        self.attempt_at: float | None = None
        self.close_at: float | None = None

    def check(self, kind: str, letter: str = "") -> bool:
        """Record a history letter the first time its kind happens; whether the kind had happened before."""
        bit = _KIND_BITS[kind]
        if self.seen & bit:
            return True
        self.seen |= bit
        self.history += letter or kind
        return False


def _s32(value: int) -> int:
    """A 32-bit sequence-number difference as a signed number."""
    return ((value + 0x80000000) & _M32) - 0x80000000


def is_reuse(conn: Connection, p: Packet) -> bool:
    """Whether a SYN starts a new connection on a known 5-tuple (Zeek's IsReuse, without its weirds)."""
    if not p.flags & SYN:
        return False
    side = conn.orig
    if p.flags & ACK:
        if conn.orig.state != INACTIVE:
            return False
        side = conn.resp
    return p.seq != side.start


def track_tcp(conn: Connection, p: Packet, is_orig: bool) -> None:
    """One TCP segment: sequence space, history, last time, endpoint states and closing (Zeek's Process)."""
    ep, peer = (conn.orig, conn.resp) if is_orig else (conn.resp, conn.orig)
    flags, length = p.flags, max(p.length, 0)
    seg = length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0) - (length if flags & RST else 0)
    end = (p.seq + seg) & _M32
    _init_side(ep, flags, p.seq, end)
    _history(conn, ep, is_orig, flags, ep.last_rel + _s32(p.seq - ep.last32), length)
    if p.window == 0 and not flags & RST and peer.state != CLOSED and ep.state != RESET:
        ep.zero_win += 1
        _scaled(conn, ep.zero_win, "W" if is_orig else "w")
    if not (conn.orig.did_close and conn.resp.did_close):
        conn.last_time = p.ts
    if flags & FIN:
        ep.fin += 1
    if flags & ACK:
        if peer.state == INACTIVE:
            peer.init_seq((p.ack - 1) & _M32, (p.ack - 1) & _M32)
        elif not flags & RST:
            delta = _s32(p.ack - peer.ack32)
            if delta > 0 and not (p.ack == 0 and delta > _TOO_LARGE):
                peer.ack32, peer.ack_rel = p.ack, peer.ack_rel + delta
    _advance(conn, ep, flags, end, length, is_orig)
    if _update_state(conn, ep, peer, is_orig, flags, length, p.ts) and not ep.did_close:
        ep.did_close = True
        if ep.state == RESET or peer.did_close or peer.state == INACTIVE:
            conn.close_at = conn.last_time + CLOSE_DELAY


def _init_side(ep: Endpoint, flags: int, seq: int, end: int) -> None:
    """Start (or restart, on a new SYN) an endpoint's sequence space (Zeek's init_endpoint)."""
    syn = flags & SYN
    if ep.state == INACTIVE:
        if syn:
            ep.init_seq(seq, end)
        else:
            ep.init_seq((seq - 1) & _M32, seq)
    elif syn and (
        (ep.state in (SYN_SENT, SYN_ACK_SENT) and seq != ep.start)
        or ep.state in (ESTABLISHED, PARTIAL)
        or (ep.state == RESET and ep.prev == INACTIVE)
    ):
        ep.init_seq(seq, end)


def _advance(conn: Connection, ep: Endpoint, flags: int, end: int, length: int, is_orig: bool) -> None:
    """Move an endpoint's highest sequence number; count retransmissions (Zeek's update_last_seq)."""
    delta = _s32(end - ep.last32)
    if flags & (SYN | RST) and abs(delta) > _TOO_LARGE:
        return
    if (flags & FIN and ep.last_rel == 1) or (ep.state != RESET and delta > 0):
        ep.last32, ep.last_rel = end, ep.last_rel + delta
    elif ep.state != RESET and length > 0:
        ep.rxmit += 1
        _scaled(conn, ep.rxmit, "T" if is_orig else "t")


def _history(conn: Connection, ep: Endpoint, is_orig: bool, flags: int, rel_seq: int, length: int) -> None:
    """Add the packet's history letter (Zeek's update_history): S/H/F/R again only at a new sequence number."""
    control = flags & (SYN | FIN | RST)
    if control in (SYN, FIN, RST):
        kind = "S" if control == SYN else "F" if control == FIN else "R"
        letter = "H" if control == SYN and flags & ACK else kind
        mark = rel_seq + length if control == FIN else rel_seq
        if not is_orig:
            kind, letter = kind.lower(), letter.lower()
        if conn.check(kind, letter) and getattr(ep, _MARKS[control]) != mark:
            conn.history += letter
        setattr(ep, _MARKS[control], mark)
    elif control:
        letter = "I" if control == FIN | RST else "Q"
        conn.check(letter if is_orig else letter.lower())
    elif length:
        conn.check("D" if is_orig else "d")
    elif flags & ACK:
        conn.check("A" if is_orig else "a")


def _scaled(conn: Connection, count: int, letter: str) -> None:
    """Record a letter at the 1st, 10th, 100th… occurrence (Zeek's scaled history entries)."""
    if count == 10 ** (len(str(count)) - 1):
        conn.history += letter


def _update_state(
    conn: Connection, ep: Endpoint, peer: Endpoint, is_orig: bool, flags: int, length: int, ts: float
) -> bool:
    """Move the sender's (and maybe its peer's) TCP state; whether the sender has now closed its side."""
    state, do_close = ep.state, False
    if state == INACTIVE:
        if flags & SYN:
            if is_orig:
                ep.set(SYN_ACK_SENT if flags & ACK else SYN_SENT)
                conn.attempt_at = ts + ATTEMPT_DELAY
            else:
                if peer.state == SYN_SENT:
                    peer.set(ESTABLISHED)
                ep.set(ESTABLISHED)
        do_close = _fin_rst(ep, flags)
        if ep.state == INACTIVE:
            if not is_orig and length == 0 and conn.orig.state == SYN_SENT:
                pass  # an ACK before the SYN-ACK: not a partial connection
            elif flags & ACK and peer.state == ESTABLISHED:
                ep.set(ESTABLISHED)
            else:
                ep.set(PARTIAL)
    elif state in (SYN_SENT, SYN_ACK_SENT):
        do_close = _fin_rst(ep, flags)
    elif state in (ESTABLISHED, PARTIAL):
        if flags & SYN and state == PARTIAL and peer.state == INACTIVE and not flags & ACK:
            ep.set(SYN_SENT)
        if flags & FIN and not flags & RST and peer.state == RESET and peer.prev == CLOSED:
            peer.set(CLOSED)  # the peer's FIN then RST was a normal close after all
        do_close = _fin_rst(ep, flags)
    elif state == CLOSED and flags & RST and peer.state != CLOSED:
        ep.set(RESET)
        do_close = not ep.did_close
        conn.close_at = ts + CLOSE_DELAY if conn.close_at is None else min(conn.close_at, ts + CLOSE_DELAY)
    return do_close


def _fin_rst(ep: Endpoint, flags: int) -> bool:
    if flags & FIN and not (flags & RST and ep.state in (ESTABLISHED, PARTIAL)):
        ep.set(CLOSED)
    if flags & RST:
        ep.set(RESET)
    return bool(flags & (FIN | RST))


def conn_state(conn: Connection) -> str:
    """Zeek's conn_state for a connection (base/protocols/conn/main.zeek)."""
    if conn.proto == UDP:
        if conn.orig.pkts:
            return "SF" if conn.resp.pkts else "S0"
        return "SHR" if conn.resp.pkts else "OTH"
    if conn.proto != TCP:
        return "OTH"
    os, rs = conn.orig.state, conn.resp.state
    o_inactive, r_inactive = os in (INACTIVE, PARTIAL), rs in (INACTIVE, PARTIAL)
    if rs == RESET:
        sizes = conn.orig.tcp_size(conn.resp) + conn.resp.tcp_size(conn.orig)
        if os in (SYN_SENT, SYN_ACK_SENT) or (os == RESET and sizes == 0):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os == RESET:
        if r_inactive:
            return "RSTOS0" if _RSTOS0.fullmatch(conn.history) else "OTH"
        return "RSTO"
    if os == CLOSED and rs == CLOSED:
        return "SF"
    if os == CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == CLOSED:
        return "SHR" if o_inactive else "S3"
    if os == SYN_SENT and rs == INACTIVE:
        return "S0"
    return "S1" if os == ESTABLISHED and rs == ESTABLISHED else "OTH"
