"""Flows from packet captures (pcap or pcapng, also gzip-compressed), assembled as Zeek's conn.log would show them."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import dpkt  # type: ignore[import-untyped]

from machimori.detection.assembly import MAX_CONNECTIONS, DnsCallback, FlowTable
from machimori.detection.connection import ICMP, ICMP6, TCP, UDP, Packet
from machimori.detection.flows import Flow
from machimori.detection.reading import ReadReport
from machimori.diagnostics import InputError

#: Largest record or block believed; a larger length field means the file is damaged (libpcap caps at 256 KiB).
MAX_RECORD = 16 * 1024 * 1024

TRUNCATED = "ヘッダの途中で切れたパケット / packet cut short inside its headers"
UNDECODABLE = "解読できないパケット / undecodable packet"
FRAGMENT = "再組み立てしない IP 断片 / IP fragment after the first (not reassembled)"
FILE_END = "ファイル末尾で切れたレコード / capture file cut short at the end"
DAMAGED = "壊れたレコード、以降は読みません / damaged record, the rest of the file is not read"

_PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_VLAN_TYPES = {0x8100, 0x88A8, 0x9100}
_ETHER_VERSIONS = {0x0800: 4, 0x86DD: 6}
_AF_VERSIONS = {2: 4, 10: 6, 24: 6, 28: 6, 30: 6}  # AF_INET; AF_INET6 on Linux, the BSDs and macOS
# ICMP types answered by another type (request, reply): Zeek's ICMP4_counterpart and ICMP6_counterpart.
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130}
_ICMP6_PAIRS |= {139: 140, 140: 139, 141: 142, 142: 141, 144: 145, 145: 144, 146: 147, 147: 146}


class _Stream(Protocol):
    """A binary file as read here: a plain or a gzip one."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


class _Skip(Exception):
    """A packet that cannot be decoded, with the reason it is counted under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Damaged(Exception):
    """A record or block length no capture would hold."""


def read_capture(
    path: str | Path,
    report: ReadReport,
    *,
    dns_answers: DnsCallback | None = None,
    max_connections: int = MAX_CONNECTIONS,
) -> Iterator[Flow]:
    """The flows of a capture as each ends (the rest at the end of the file, by start time); bad packets are counted.

    `dns_answers(query name, [A/AAAA addresses])` is called for every DNS response seen (UDP or TCP port 53).
    `report.read` counts the packets read; undecodable ones are skipped with their packet number.
    A file that is not a capture, or of a link type not read, is an InputError.
    """
    table = FlowTable(max_connections, dns_answers)
    for packet in read_packets(path, report):
        yield from table.add(packet)
    yield from table.flush()


def read_packets(path: str | Path, report: ReadReport) -> Iterator[Packet]:
    """The TCP, UDP and ICMP packets of a capture, decoded; damaged ones are counted in the report and skipped."""
    name = str(path)
    with _open(name) as raw:
        source = _Guarded(raw)
        reader = _reader(name, source)
        decode = _decoder(name, reader.datalink())
        records = iter(reader)
        number = 0
        while True:
            try:
                ts, buf = next(records)
            except StopIteration:
                if source.broken or 0 < source.got < source.asked:
                    report.skip(name, number + 1, FILE_END)
                return
            except (dpkt.Error, struct.error, ValueError, IndexError, _Damaged):
                report.skip(name, number + 1, FILE_END if source.short else DAMAGED)
                return
            number += 1
            if source.short:
                report.skip(name, number, FILE_END)
                return
            try:
                packet = decode(float(ts), buf)
            except _Skip as skip:
                report.skip(name, number, skip.reason)
                continue
            report.read += 1
            if packet is not None:
                yield packet


class _Guarded:
    """The capture file as dpkt reads it: notes a short read and refuses a length no capture would hold."""

    def __init__(self, raw: _Stream) -> None:
        self.raw = raw
        self.asked = self.got = 0
        self.broken = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (never "all of it": a negative or huge size is a damaged file)."""
        if size < 0 or size > MAX_RECORD:
            raise _Damaged(size)
        try:
            data = self.raw.read(size)
        except (OSError, EOFError):  # a damaged or cut gzip stream
            data, self.broken = b"", True
        self.asked, self.got = size, len(data)
        return data

    @property
    def short(self) -> bool:
        """Whether the last read got less than it asked for."""
        return self.got < self.asked


@contextmanager
def _open(name: str) -> Iterator[_Stream]:
    """The capture file opened for reading (gunzipped if it is gzip); a file that cannot be read is an InputError."""
    try:
        raw = open(name, "rb")  # noqa: SIM115 - closed by the `with` below
    except FileNotFoundError:
        raise InputError.single(name, "ファイルが見つかりません / file not found") from None
    except IsADirectoryError:
        raise InputError.single(name, "ディレクトリです / is a directory, expected a file") from None
    except OSError as exc:
        raise InputError.single(name, f"読めません / cannot read: {exc.strerror or exc}") from None
    with raw:
        if raw.read(2) != b"\x1f\x8b":
            raw.seek(0)
            yield raw
            return
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped


def _reader(name: str, source: _Guarded) -> Any:
    """dpkt's reader for the file's format, chosen by its magic number."""
    magic = source.read(4)
    if source.broken:
        raise InputError.single(name, "gzip が壊れています / damaged gzip stream")
    source.raw.seek(0)
    if magic in _PCAP_MAGICS:
        kind = dpkt.pcap.Reader
    elif magic == _PCAPNG_MAGIC:
        kind = dpkt.pcapng.Reader
    else:
        raise InputError.single(name, "pcap でも pcapng でもありません / not a pcap or pcapng capture")
    try:
        return kind(source)
    except (dpkt.Error, struct.error, ValueError, IndexError, _Damaged) as exc:
        raise InputError.single(name, f"キャプチャのヘッダが壊れています / damaged capture header ({exc})") from None


def _decoder(name: str, linktype: int) -> Callable[[float, bytes], Packet | None]:
    """The function that decodes one frame of this link type into a packet (None for non-IP frames)."""
    link = _LINKS.get(linktype)
    if link is None:
        raise InputError.single(
            name,
            f"対応していないリンク種別 {linktype} です / unsupported link type {linktype} "
            "(read: Ethernet, raw IP, Linux cooked SLL/SLL2, loopback/null)",
        )

    def decode(ts: float, buf: bytes) -> Packet | None:
        version, offset = link(buf)
        if version == 4:
            return _ipv4(ts, buf, offset)
        return _ipv6(ts, buf, offset) if version == 6 else None

    return decode


def _need(buf: bytes, size: int) -> None:
    if len(buf) < size:
        raise _Skip(TRUNCATED)


def _ethernet(buf: bytes) -> tuple[int, int]:
    _need(buf, 14)
    ethertype, offset = int.from_bytes(buf[12:14], "big"), 14
    while ethertype in _VLAN_TYPES:
        _need(buf, offset + 4)
        ethertype, offset = int.from_bytes(buf[offset + 2 : offset + 4], "big"), offset + 4
    return _ETHER_VERSIONS.get(ethertype, 0), offset


def _raw(buf: bytes) -> tuple[int, int]:
    _need(buf, 1)
    if buf[0] >> 4 not in (4, 6):
        raise _Skip(UNDECODABLE)
    return buf[0] >> 4, 0


def _null(buf: bytes) -> tuple[int, int]:
    _need(buf, 4)
    family = int.from_bytes(buf[:4], "little")  # the writer's byte order: try both
    if family > 0xFFFF:
        family = int.from_bytes(buf[:4], "big")
    return _AF_VERSIONS.get(family, 0), 4


def _loop(buf: bytes) -> tuple[int, int]:
    _need(buf, 4)
    return _AF_VERSIONS.get(int.from_bytes(buf[:4], "big"), 0), 4


def _sll(buf: bytes) -> tuple[int, int]:
    _need(buf, 16)
    return _ETHER_VERSIONS.get(int.from_bytes(buf[14:16], "big"), 0), 16


def _sll2(buf: bytes) -> tuple[int, int]:
    _need(buf, 20)
    return _ETHER_VERSIONS.get(int.from_bytes(buf[0:2], "big"), 0), 20


#: Link types read: null (0), Ethernet (1), raw IP (12, 14, 101, 228, 229), loop (108), SLL (113), SLL2 (276).
_LINKS: dict[int, Callable[[bytes], tuple[int, int]]] = {
    0: _null,
    1: _ethernet,
    12: _raw,
    14: _raw,
    101: _raw,
    108: _loop,
    113: _sll,
    228: _raw,
    229: _raw,
    276: _sll2,
}


def _ipv4(ts: float, buf: bytes, off: int) -> Packet | None:
    _need(buf, off + 20)
    version_ihl, total, fragment, proto = buf[off], *struct.unpack_from("!H2xH", buf, off + 2), buf[off + 9]
    header = (version_ihl & 0x0F) * 4
    total = total or len(buf) - off  # 0 when the sender's card segments (TSO)
    if version_ihl >> 4 != 4 or header < 20 or total < header:
        raise _Skip(UNDECODABLE)
    _need(buf, off + header)
    if fragment & 0x1FFF:
        raise _Skip(FRAGMENT)
    src, dst = buf[off + 12 : off + 16], buf[off + 16 : off + 20]
    return _transport(ts, buf, proto, src, dst, total, off + header, total - header, False)


def _ipv6(ts: float, buf: bytes, off: int) -> Packet | None:
    _need(buf, off + 40)
    if buf[off] >> 4 != 6:
        raise _Skip(UNDECODABLE)
    length, proto = int.from_bytes(buf[off + 4 : off + 6], "big"), buf[off + 6]
    length = length or len(buf) - off - 40  # 0 for a jumbogram or an offloaded segment
    src, dst = buf[off + 8 : off + 24], buf[off + 24 : off + 40]
    at, left = off + 40, length
    while proto in (0, 43, 44, 51, 60):  # hop-by-hop, routing, fragment, AH, destination options
        _need(buf, at + 8)
        if proto == 44:
            if int.from_bytes(buf[at + 2 : at + 4], "big") & 0xFFF8:
                raise _Skip(FRAGMENT)
            size = 8
        else:
            size = (buf[at + 1] + 2) * 4 if proto == 51 else (buf[at + 1] + 1) * 8
        proto, at, left = buf[at], at + size, left - size
    if left < 0:
        raise _Skip(UNDECODABLE)
    return _transport(ts, buf, proto, src, dst, 40 + length, at, left, True)


def _transport(
    ts: float, buf: bytes, proto: int, src: bytes, dst: bytes, ip_bytes: int, at: int, length: int, v6: bool
) -> Packet | None:
    """The packet of a TCP, UDP or ICMP header at `at`; None for other protocols (conn.log has no flow for them)."""
    if proto == TCP:
        _need(buf, at + 20)
        sport, dport, seq, ack, offset_flags, window = struct.unpack_from("!HHIIHH", buf, at)
        header = (offset_flags >> 12) * 4
        if header < 20 or header > length:
            raise _Skip(UNDECODABLE)
        _need(buf, at + header)
        size = length - header
        payload = buf[at + header : at + header + size]
        return Packet(ts, TCP, src, sport, dst, dport, ip_bytes, size, payload, offset_flags & 0xFF, seq, ack, window)
    if proto == UDP:
        _need(buf, at + 8)
        sport, dport, declared = struct.unpack_from("!HHH", buf, at)
        size = (min(declared, length) if declared >= 8 else length) - 8
        if size < 0:
            raise _Skip(UNDECODABLE)
        return Packet(ts, UDP, src, sport, dst, dport, ip_bytes, size, buf[at + 8 : at + 8 + size])
    if (proto == ICMP and not v6) or (proto == ICMP6 and v6):
        _need(buf, at + 8)
        if length < 8:
            raise _Skip(UNDECODABLE)
        kind, code = buf[at], buf[at + 1]
        answer = (_ICMP6_PAIRS if v6 else _ICMP4_PAIRS).get(kind)
        resp_p = code if answer is None else answer
        return Packet(ts, proto, src, kind, dst, resp_p, ip_bytes, length - 8, b"", one_way=answer is None)
    return None
