"""Where flows come from: a conn.log (either encoding, optionally gzip), a capture, or a growing log."""

from __future__ import annotations

import gzip
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from machimori.detection.flows import Flow
from machimori.detection.reading import ReadReport
from machimori.detection.zeek import MAX_LINE, ConnLogReader
from machimori.diagnostics import InputError

_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")
_GZIP_MAGIC = b"\x1f\x8b"

DnsAnswers = Callable[[str, list[str]], None]


def read_flows(path: str | Path, report: ReadReport, *, dns_answers: DnsAnswers | None = None) -> Iterator[Flow]:
    """The flows of one file: a Zeek conn.log (TSV or JSON lines, plain or gzip) or a pcap/pcapng capture."""
    name = str(path)
    head = _head(name)
    if head[:4] in _PCAP_MAGICS:
        from machimori.detection.pcap import read_capture

        yield from read_capture(path, report, dns_answers=dns_answers)
        return
    if b"\x00" in head[:512] and head[:2] != _GZIP_MAGIC:
        raise InputError.single(name, "neither a conn.log nor a pcap capture / conn.log でも pcap でもありません")
    with _open_text(name, head) as lines:
        reader = ConnLogReader(name, report)
        yield from reader.lines(enumerate(bounded_lines(lines), start=1))


def bounded_lines(handle: IO[str]) -> Iterator[str]:
    """The lines of a text stream; a line longer than MAX_LINE is cut there (the reader then skips it)."""
    readline = handle.readline
    while line := readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith("\n"):
            while (rest := readline(MAX_LINE)) and not rest.endswith("\n"):
                pass  # drop the rest of an over-long line without holding it
        yield line


def follow_conn_log(
    path: str | Path, report: ReadReport, stop: threading.Event, *, poll: float = 1.0, from_start: bool = True
) -> Iterator[Flow]:
    """The flows of a conn.log as Zeek writes it, line by line, across rotations, until `stop` is set."""
    name = str(path)
    while not stop.is_set():
        try:
            handle = open(name, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        except FileNotFoundError:
            stop.wait(poll)
            continue
        except OSError as exc:
            raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None
        with handle:
            if not from_start:
                handle.seek(0, os.SEEK_END)
            yield from _tail(handle, name, report, stop, poll)
        from_start = True  # a rotated file is read from its beginning


def _tail(handle: IO[str], name: str, report: ReadReport, stop: threading.Event, poll: float) -> Iterator[Flow]:
    """Lines of an open file as they are completed; returns when the file was rotated or truncated."""
    reader = ConnLogReader(name, report)
    identity = os.fstat(handle.fileno()).st_ino
    number, partial = 0, ""
    while not stop.is_set():
        chunk = handle.readline()
        if chunk:
            if not chunk.endswith("\n"):
                partial += chunk  # Zeek is still writing this line
                continue
            number += 1
            flow = reader.line(number, partial + chunk)
            partial = ""
            if flow is not None:
                yield flow
            continue
        if _replaced(name, identity, handle.tell()):
            return
        stop.wait(poll)


def _replaced(name: str, identity: int, position: int) -> bool:
    try:
        status = os.stat(name)
    except FileNotFoundError:
        return False  # between a rotation's rename and the new file
    return status.st_ino != identity or status.st_size < position


def _head(name: str) -> bytes:
    try:
        with open(name, "rb") as handle:
            return handle.read(4096)
    except FileNotFoundError:
        raise InputError.single(name, "file not found / ファイルが見つかりません") from None
    except IsADirectoryError:
        raise InputError.single(name, "is a directory, expected a file / ディレクトリです") from None
    except OSError as exc:
        raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None


def _open_text(name: str, head: bytes) -> IO[str]:
    if head[:2] == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(name, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(name, encoding="utf-8", errors="replace", newline="")
