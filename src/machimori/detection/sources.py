"""Where flows come from: a conn.log (either encoding, optionally gzip), a capture, or a growing log."""

from __future__ import annotations

import gzip
import io
import os
import stat
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
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
    handle = _open_binary(name)
    with handle:
        try:
            head = handle.peek(4096)[:4096]  # peeked, not read: a pipe (`<(zcat …)`, /dev/stdin) loses nothing
        except OSError as exc:
            raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None
        if head[:4] in _PCAP_MAGICS:
            handle.close()
            from machimori.detection.pcap import read_capture

            yield from read_capture(path, report, dns_answers=dns_answers)
            return
        # A log that starts like one is read even with NULs in it (a crash leaves those): they are skipped lines.
        log_like = head.lstrip(b"\xef\xbb\xbf").startswith((b"#", b"{"))
        if b"\x00" in head[:512] and head[:2] != _GZIP_MAGIC and not log_like:
            raise InputError.single(name, "neither a conn.log nor a pcap capture / conn.log でも pcap でもありません")
        with _text(handle, gzipped=head[:2] == _GZIP_MAGIC) as text:
            reader = ConnLogReader(name, report)
            number = 0
            try:
                for number, line in enumerate(bounded_lines(text), start=1):
                    flow = reader.line(number, line)
                    if flow is not None:
                        yield flow
            except (EOFError, zlib.error, gzip.BadGzipFile):
                report.skip(
                    name,
                    number + 1,
                    "compressed file cut short or corrupt / 圧縮ファイルが途中で切れているか壊れています",
                )
            except OSError as exc:
                raise InputError.single(name, f"cannot read: {exc.strerror or exc}", number + 1) from None


def bounded_lines(handle: IO[str]) -> Iterator[str]:
    """The lines of a text stream; a line longer than MAX_LINE is cut there (the reader then skips it)."""
    readline = handle.readline
    while line := readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith("\n"):
            while (rest := readline(MAX_LINE)) and not rest.endswith("\n"):
                pass  # drop the rest of an over-long line without holding it
        yield line


#: The most bytes of one line a follower holds: enough for MAX_LINE characters of UTF-8, so it cuts where a file does.
_MAX_LINE_BYTES = 4 * (MAX_LINE + 1)


def follow_conn_log(
    path: str | Path, report: ReadReport, stop: threading.Event, *, poll: float = 1.0, from_start: bool = True
) -> Iterator[Flow]:
    """The flows of a conn.log as Zeek writes it, line by line, across rotations, until `stop` is set."""
    name = str(path)
    reader: ConnLogReader | None = None
    while not stop.is_set():
        try:
            if not stat.S_ISREG(os.stat(name).st_mode):  # before opening: opening a FIFO would block
                raise InputError.single(name, "not a regular file, cannot be followed / 通常のファイルではありません")
            handle = open(name, "rb")  # noqa: SIM115
        except FileNotFoundError:
            from_start = True  # a file that appears later is new: all of it is to be read
            stop.wait(poll)
            continue
        except OSError as exc:
            raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None
        with handle:
            magic = handle.peek(4)[:4]
            if magic[:2] == _GZIP_MAGIC or magic in _PCAP_MAGICS:
                raise InputError.single(
                    name, "a compressed log or a capture cannot be followed / 圧縮ログやキャプチャは追跡できません"
                )
            reader = reader or ConnLogReader(name, report)
            number, mid_line = (0, False) if from_start else _skip_to_end(handle, reader)
            truncated = yield from _tail(handle, name, reader, number, mid_line, stop, poll)
        from_start = True  # a rotated or truncated file is read from its beginning
        if not truncated:
            reader = None  # a new file has a header of its own; a truncated one (copytruncate) may go on without


def _skip_to_end(handle: IO[bytes], reader: ConnLogReader) -> tuple[int, bool]:
    """Give the reader the header lines at the top and go to the end: the lines there, and whether amid one."""
    number = 0
    while (line := handle.readline(_MAX_LINE_BYTES).lstrip(b"\xef\xbb\xbf")).startswith(b"#") and line.endswith(b"\n"):
        number += 1
        reader.line(number, line.decode("utf-8", "replace"))
    handle.seek(0)
    number, last = 0, b"\n"
    while chunk := handle.read(1 << 20):
        number += chunk.count(b"\n")
        last = chunk[-1:]
    return number, last != b"\n"  # amid a line Zeek is writing: the rest of it is not ours to read


def _tail(
    handle: IO[bytes],
    name: str,
    reader: ConnLogReader,
    number: int,
    dropping: bool,
    stop: threading.Event,
    poll: float,
) -> Generator[Flow, None, bool]:
    """Lines of an open file as they are completed, until it is rotated or truncated (then whether truncated)."""
    identity = os.fstat(handle.fileno()).st_ino
    pending = b""
    replaced: str | None = None
    while not stop.is_set():
        chunk = handle.readline(_MAX_LINE_BYTES)
        if chunk:
            line = pending + chunk if pending else chunk
            if not chunk.endswith(b"\n"):
                pending = line[:_MAX_LINE_BYTES]  # Zeek is still writing this line (or it is far too long)
                continue
            pending = b""
            number += 1
            if dropping:  # the end of a line that was being written when following began
                dropping = False
                continue
            flow = reader.line(number, line[:_MAX_LINE_BYTES].decode("utf-8", "replace"))
            if flow is not None:
                yield flow
            continue
        if replaced:  # the old file has been read to its end
            if pending and not dropping:
                reader.report.skip(
                    name,
                    number + 1,
                    "line cut short by rotation or truncation / ローテーションか切り詰めで途中で切れた行",
                )
            return replaced == "truncated"
        # Once replaced, read the old file once more: Zeek may have written to it just before.
        if not (replaced := _replaced(name, identity, handle.tell())):
            stop.wait(poll)
    return False


def _replaced(name: str, identity: int, position: int) -> str | None:
    """Whether the file at `name` is another one now ("rotated"), or this one cut shorter ("truncated")."""
    try:
        status = os.stat(name)
    except FileNotFoundError:
        return None  # between a rotation's rename and the new file
    if status.st_ino != identity:
        return "rotated"
    return "truncated" if status.st_size < position else None


def _open_binary(name: str) -> io.BufferedReader:
    try:
        return open(name, "rb")
    except FileNotFoundError:
        raise InputError.single(name, "file not found / ファイルが見つかりません") from None
    except IsADirectoryError:
        raise InputError.single(name, "is a directory, expected a file / ディレクトリです") from None
    except OSError as exc:
        raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None


def _text(handle: io.BufferedReader, *, gzipped: bool) -> IO[str]:
    """The text of a conn.log; lines end at "\n" only (CRLF is taken too), so line numbers are those of `sed -n`."""
    if gzipped:
        return io.TextIOWrapper(
            gzip.GzipFile(fileobj=handle, mode="rb"), encoding="utf-8", errors="replace", newline="\n"
        )
    return io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="\n")
