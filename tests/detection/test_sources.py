"""Where flows come from: conn.log files (plain, gzip, piped), what a tired analyst hands over (empty files,
directories, Windows line ends, binary junk, a 10 MB line) and a conn.log Zeek is still writing — followed across
partial writes, rotation and truncation, and stopped promptly."""

from __future__ import annotations

import gzip
import os
import queue
import random
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machimori.detection import sources
from machimori.detection.flows import STANDARD_FIELDS, Flow
from machimori.detection.reading import ReadReport
from machimori.detection.sources import bounded_lines, follow_conn_log, read_flows
from machimori.detection.zeek import MAX_LINE, conn_log_header, conn_log_line
from machimori.diagnostics import InputError

T0 = 1_700_000_000.0
HEADER = conn_log_header(T0)
POLL = 0.05


def some_flows(count: int, *, seed: int = 7) -> list[Flow]:
    """Varied flows (random enough that compression does not hide them all in a few bytes)."""
    rng = random.Random(seed)
    return [
        Flow(
            ts=T0 + number + rng.randrange(10**6) / 1e6,
            uid=f"C{rng.getrandbits(64):016x}",
            orig_h=f"10.20.{rng.randrange(256)}.{rng.randrange(256)}",
            orig_p=rng.randrange(1024, 65536),
            resp_h=f"203.0.113.{rng.randrange(256)}",
            resp_p=rng.choice([23, 53, 80, 443, 2323]),
            proto=rng.choice(["tcp", "udp"]),
            service=rng.choice(["", "dns", "http"]),
            duration=rng.choice([None, rng.randrange(10**7) / 1e6]),
            orig_bytes=rng.choice([None, rng.randrange(10**6)]),
            resp_bytes=rng.choice([None, rng.randrange(10**6)]),
            conn_state=rng.choice(["S0", "SF", "REJ"]),
            history=rng.choice(["S", "ShADadFf", ""]),
            orig_pkts=rng.randrange(100),
            orig_ip_bytes=rng.randrange(10**5),
            resp_pkts=rng.randrange(100),
            resp_ip_bytes=rng.randrange(10**5),
        )
        for number in range(count)
    ]


def log_text(flows: list[Flow]) -> str:
    return HEADER + "".join(map(conn_log_line, flows))


def json_text(flows: list[Flow]) -> str:
    import json

    lines = []
    for flow in flows:
        record = {
            "ts": flow.ts,
            "uid": flow.uid,
            "id.orig_h": flow.orig_h,
            "id.orig_p": flow.orig_p,
            "id.resp_h": flow.resp_h,
            "id.resp_p": flow.resp_p,
            "proto": flow.proto,
            "service": flow.service,
            "duration": flow.duration,
            "orig_bytes": flow.orig_bytes,
            "resp_bytes": flow.resp_bytes,
            "conn_state": flow.conn_state,
            "missed_bytes": flow.missed_bytes,
            "history": flow.history,
            "orig_pkts": flow.orig_pkts,
            "orig_ip_bytes": flow.orig_ip_bytes,
            "resp_pkts": flow.resp_pkts,
            "resp_ip_bytes": flow.resp_ip_bytes,
            "label": "Benign",
        }
        lines.append(json.dumps({key: value for key, value in record.items() if value is not None}) + "\n")
    return "".join(lines)


def read_all(path: Path) -> tuple[list[Flow], ReadReport]:
    report = ReadReport()
    return list(read_flows(path, report)), report


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- read_flows: encodings and compression --------------------------------------------------------------------------


def test_tsv_json_and_their_gzip_give_the_same_flows(tmp_path: Path) -> None:
    flows = some_flows(50)
    for name, data in (
        ("conn.log", log_text(flows).encode()),
        ("conn.log.gz", gzip.compress(log_text(flows).encode())),
        ("conn.json", json_text(flows).encode()),
        ("conn.json.gz", gzip.compress(json_text(flows).encode())),
        ("conn.log.gz.gz", gzip.compress(log_text(flows).encode()) * 1),
    ):
        read_back, report = read_all(write(tmp_path / name, data))
        assert read_back == flows, name
        assert report.read == 50 and not report.skipped, name


def test_concatenated_gzip_members_are_read_through(tmp_path: Path) -> None:
    # `cat conn.00.log.gz conn.01.log.gz > day.log.gz`
    first, second = some_flows(20, seed=1), some_flows(20, seed=2)
    data = gzip.compress(log_text(first).encode()) + gzip.compress(log_text(second).encode())
    read_back, report = read_all(write(tmp_path / "day.log.gz", data))
    assert read_back == first + second and not report.skipped


def test_a_truncated_gzip_gives_what_it_holds_and_says_it_was_cut(tmp_path: Path) -> None:
    flows = some_flows(2000)
    data = gzip.compress(log_text(flows).encode())
    read_back, report = read_all(write(tmp_path / "conn.log.gz", data[: len(data) * 6 // 10]))
    assert 0 < len(read_back) < len(flows)
    assert read_back == flows[: len(read_back)]
    assert report.skipped == {"compressed file cut short or corrupt / 圧縮ファイルが途中で切れているか壊れています": 1}


@pytest.mark.parametrize("where", [0.3, 0.5, 0.99])
def test_a_corrupt_gzip_is_reported_not_raised(tmp_path: Path, where: float) -> None:
    data = bytearray(gzip.compress(log_text(some_flows(500)).encode()))
    for offset in range(int(len(data) * where), int(len(data) * where) + 8):
        data[offset] ^= 0x5A
    read_back, report = read_all(write(tmp_path / "conn.log.gz", bytes(data)))
    assert report.skipped_total >= 1
    assert len(read_back) < 500


def test_gzip_of_garbage_is_an_error_or_skips_never_a_crash(tmp_path: Path) -> None:
    data = gzip.compress(random.Random(3).randbytes(20_000))
    try:
        read_back, report = read_all(write(tmp_path / "junk.gz", data))
    except InputError as error:
        assert str(error).startswith(str(tmp_path / "junk.gz"))
    else:
        assert read_back == [] or report.skipped_total > 0


# --- read_flows: what an analyst hands over ---------------------------------------------------------------------------


def test_binary_garbage_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "conn.log", b"\x7fELF\x02\x01\x01\x00" + random.Random(1).randbytes(5000))
    with pytest.raises(InputError, match=r"neither a conn\.log nor a pcap"):
        read_all(path)


def test_binary_garbage_without_nul_bytes_is_not_a_crash(tmp_path: Path) -> None:
    data = bytes(byte or 1 for byte in random.Random(2).randbytes(50_000))
    try:
        read_back, _ = read_all(write(tmp_path / "conn.log", data))
    except InputError as error:
        assert "#fields" in str(error)
    else:
        assert read_back == []


def test_nul_bytes_a_crash_left_in_a_log_are_skipped(tmp_path: Path) -> None:
    # After a power loss the end of a log can be a run of NUL bytes where the data never landed.
    flows = some_flows(2)
    path = write(
        tmp_path / "conn.log", log_text(flows[:1]).encode() + b"\x00" * 4096 + b"\n" + log_text(flows[1:]).encode()
    )
    read_back, report = read_all(path)
    assert read_back == flows
    assert report.skipped_total == 1


def test_utf16_from_windows_is_an_input_error(tmp_path: Path) -> None:
    # PowerShell's `>` writes UTF-16 with a byte order mark.
    path = write(tmp_path / "conn.log", "\ufeff".encode("utf-16-le") + log_text(some_flows(3)).encode("utf-16-le"))
    with pytest.raises(InputError):
        read_all(path)


@pytest.mark.parametrize("content", ["", "\n", "\n\n  \n", "\r\n"])
def test_an_empty_file_has_no_flows_and_no_error(tmp_path: Path, content: str) -> None:
    read_back, report = read_all(write(tmp_path / "conn.log", content))
    assert read_back == [] and report.read == 0 and not report.skipped


def test_a_header_only_log_has_no_flows(tmp_path: Path) -> None:
    read_back, report = read_all(write(tmp_path / "conn.log", HEADER + "#close\t2023-11-15-00-00-00\n"))
    assert read_back == [] and not report.skipped


def test_a_directory_and_a_missing_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory") as raised:
        read_all(tmp_path)
    assert str(raised.value).startswith(str(tmp_path))
    with pytest.raises(InputError, match="file not found") as raised:
        read_all(tmp_path / "nope.log")
    assert str(raised.value).startswith(str(tmp_path / "nope.log"))


def test_a_log_without_fields_is_an_input_error_at_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "conn.log", "\n" + "".join(map(conn_log_line, some_flows(3))))
    with pytest.raises(InputError) as raised:
        read_all(path)
    assert str(raised.value).startswith(f"{path}:2: ")


def test_windows_notepad_bom_and_crlf(tmp_path: Path) -> None:
    flows = some_flows(5)
    path = write(tmp_path / "conn.log", b"\xef\xbb\xbf" + log_text(flows).replace("\n", "\r\n").encode())
    assert read_all(path) == (flows, read_all(path)[1])
    assert not read_all(path)[1].skipped


def test_non_utf8_bytes_are_replaced_not_fatal(tmp_path: Path) -> None:
    flow = some_flows(1)[0]
    values = conn_log_line(flow).rstrip("\n").encode().split(b"\t")
    values[15] = b"S\xff\xfe\xc3"  # history: invalid UTF-8
    head = HEADER.replace("resp_ip_bytes\n", "resp_ip_bytes\tlabel\n", 1).encode()
    path = write(tmp_path / "conn.log", head + b"\t".join(values) + b"\t\x80\x81Malicious\xc0\n")
    (read_back,), report = read_all(path)
    assert read_back.history == "S\ufffd\ufffd\ufffd"
    assert read_back.orig_h == flow.orig_h and not report.skipped


def test_line_numbers_count_newlines_only(tmp_path: Path) -> None:
    # A stray "\r" or form feed in a column must not shift the line an analyst is sent to (`sed -n 11p`).
    good = conn_log_line(some_flows(1)[0])
    head = HEADER.replace("resp_ip_bytes\n", "resp_ip_bytes\tlabel\n", 1)
    text = head + good.rstrip("\n") + "\tx\ry\x0cz\u2028w\n" + good + "1\tbad\n"
    read_back, report = read_all(write(tmp_path / "conn.log", text))
    assert len(read_back) == 2 and report.skipped_total == 1
    assert report.examples[0].line == 11 == text.count("\n")


def test_a_huge_label_does_not_lose_the_flow(tmp_path: Path) -> None:
    flow = some_flows(1)[0]
    head = HEADER.replace("resp_ip_bytes\n", "resp_ip_bytes\tlabel\n", 1)
    text = head + conn_log_line(flow).rstrip("\n") + "\t" + "M" * 1_000_000 + "\n" + conn_log_line(flow)
    read_back, report = read_all(write(tmp_path / "conn.log", text))
    assert read_back == [flow, flow] and not report.skipped


def test_bounded_lines_does_not_hold_a_10_mb_line(tmp_path: Path) -> None:
    path = write(tmp_path / "one.log", b"x" * 10_000_000)  # no newline at all
    with open(path, encoding="utf-8", newline="\n") as handle:
        tracemalloc.start()
        try:
            lengths = [len(line) for line in bounded_lines(handle)]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert lengths == [MAX_LINE + 1]
    assert peak < 1_000_000  # a tenth of the line


def test_a_10_mb_line_is_skipped_and_the_next_one_read(tmp_path: Path) -> None:
    flow = some_flows(1)[0]
    path = write(tmp_path / "conn.log", HEADER + "{" * 10_000_000 + "\n" + conn_log_line(flow) + "9" * 10_000_000)
    report = ReadReport()
    tracemalloc.start()
    try:
        read_back = list(read_flows(path, report))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read_back == [flow]
    assert report.skipped == {"line too long / 行が長すぎます": 2}
    assert [problem.line for problem in report.examples] == [9, 11]
    assert peak < 2_000_000


def test_a_pipe_loses_nothing(tmp_path: Path) -> None:
    # `machimori detect score <(zcat conn.log.gz)`: the start of the stream is looked at, not consumed.
    flows = some_flows(300)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    results: list[Flow] = []

    def feed() -> None:
        with open(fifo, "wb") as handle:
            handle.write(log_text(flows).encode())

    def consume() -> None:
        results.extend(read_flows(fifo, ReadReport()))

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=consume, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == flows


# --- properties over files -------------------------------------------------------------------------------------------


@given(chunks=st.lists(st.binary(max_size=120), max_size=20))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_bytes_after_a_header_are_flows_or_counted_skips(chunks: list[bytes]) -> None:
    body = b"\n".join(chunk.replace(b"\n", b" ") for chunk in chunks)
    lines = body.split(b"\n") if body else []
    data_lines = 0
    for raw in lines:
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        data_lines += bool(text.strip()) and not text.startswith("#")
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "conn.log", HEADER.encode() + body)
        try:
            read_back, report = read_all(path)
        except InputError as error:  # only a header line can make the log unreadable
            assert "#fields" in str(error)
            return
    hashes = sum(raw.decode("utf-8", "replace").startswith("#") for raw in lines)
    assert report.read == len(read_back)
    assert data_lines <= report.read + report.skipped_total <= data_lines + hashes


_CELL = st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), max_size=12)


@st.composite
def flow_records(draw: st.DrawFn) -> Flow:
    """Flows with any text a conn.log can carry in its text columns."""
    text = _CELL.filter(lambda value: value not in ("-", "(empty)") and value == value.strip())
    return Flow(
        ts=draw(st.integers(0, (2**34 - 1) * 10**6)) / 1e6,
        uid=draw(st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True).filter(lambda uid: uid != "-")),
        orig_h=draw(st.ip_addresses().map(str)),
        orig_p=draw(st.integers(0, 65535)),
        resp_h=draw(st.ip_addresses().map(str)),
        resp_p=draw(st.integers(0, 65535)),
        proto=draw(st.sampled_from(["tcp", "udp", "icmp"])),
        history=draw(text),
        orig_bytes=draw(st.none() | st.integers(0, 2**63 - 1)),
        local_orig=draw(st.none() | st.booleans()),
    )


@given(flows=st.lists(flow_records(), min_size=1, max_size=4), compressed=st.booleans())
@settings(max_examples=25, deadline=None)
def test_generated_flows_round_trip_through_a_file(flows: list[Flow], compressed: bool) -> None:
    data = log_text(flows).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "conn.log", gzip.compress(data) if compressed else data)
        read_back, report = read_all(path)
    assert read_back == flows and not report.skipped


# --- follow_conn_log ---------------------------------------------------------------------------------------------------


class Following:
    """follow_conn_log running in its own thread, its flows handed over through a queue."""

    def __init__(self, path: Path, *, from_start: bool = True) -> None:
        self.report = ReadReport()
        self.stop = threading.Event()
        self.arrived: queue.Queue[Flow] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(path, from_start), daemon=True)
        self.thread.start()

    def _run(self, path: Path, from_start: bool) -> None:
        try:
            for flow in follow_conn_log(path, self.report, self.stop, poll=POLL, from_start=from_start):
                self.arrived.put(flow)
        except BaseException as error:  # handed to the test
            self.error = error

    def take(self, count: int, timeout: float = 2.0) -> list[Flow]:
        """The next `count` flows, or fewer if they do not come in time."""
        deadline = time.monotonic() + timeout
        taken: list[Flow] = []
        while len(taken) < count and (remaining := deadline - time.monotonic()) > 0:
            try:
                taken.append(self.arrived.get(timeout=remaining))
            except queue.Empty:
                break
        return taken

    def quiet(self, wait: float = 3 * POLL) -> bool:
        """Whether nothing more arrives for a while."""
        time.sleep(wait)
        return self.arrived.empty()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(1.0)
        assert not self.thread.is_alive(), "the follower did not stop"


@pytest.fixture
def follow() -> Iterator[Callable[..., Following]]:
    started: list[Following] = []

    def start(path: Path, *, from_start: bool = True) -> Following:
        started.append(Following(path, from_start=from_start))
        return started[-1]

    yield start
    for following in started:
        following.close()


@pytest.fixture
def positioned(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a follower that starts at the end has got there (so appends after it are new)."""
    event = threading.Event()
    original = sources._skip_to_end

    def skip_to_end(handle: object, reader: object) -> tuple[int, bool]:
        result = original(handle, reader)  # type: ignore[arg-type]
        event.set()
        return result

    monkeypatch.setattr(sources, "_skip_to_end", skip_to_end)
    return event


def append(path: Path, data: str | bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def test_lines_appended_by_another_thread_arrive(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flows = some_flows(6)
    path = write(tmp_path / "conn.log", log_text(flows[:2]))
    following = follow(path)
    assert following.take(2) == flows[:2]

    def zeek() -> None:
        for flow in flows[2:]:
            append(path, conn_log_line(flow))
            time.sleep(0.02)

    writer = threading.Thread(target=zeek)
    writer.start()
    assert following.take(4) == flows[2:]
    writer.join()
    assert following.quiet() and not following.report.skipped


def test_a_line_written_in_two_writes_arrives_once(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flow = some_flows(1)[0]
    path = write(tmp_path / "conn.log", HEADER)
    following = follow(path)
    line = conn_log_line(flow)
    append(path, line[:37])
    assert following.quiet()  # half a line is not a flow yet, nor a skipped line
    append(path, line[37:])
    assert following.take(1) == [flow]
    assert following.quiet()
    assert following.report.read == 1 and not following.report.skipped


def test_a_character_split_between_writes_arrives_whole(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flow = some_flows(1)[0]
    flow.history = "Sカメラé"
    line = conn_log_line(flow).encode()
    cut = line.index("メ".encode()) + 1  # in the middle of a three-byte character
    path = write(tmp_path / "conn.log", HEADER)
    following = follow(path)
    append(path, line[:cut])
    time.sleep(3 * POLL)
    append(path, line[cut:])
    assert following.take(1) == [flow]


def test_rotation_is_followed(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flows = some_flows(4)
    path = write(tmp_path / "conn.log", log_text(flows[:1]))
    following = follow(path)
    assert following.take(1) == flows[:1]
    append(path, conn_log_line(flows[1]))
    assert following.take(1) == [flows[1]]
    os.rename(path, tmp_path / "conn.2023-11-14-22-00-00.log")
    time.sleep(2 * POLL)  # between the rename and the new file
    # The new file brings its own header, with other columns.
    columns = list(reversed(STANDARD_FIELDS))
    rows = ["\t".join(reversed(conn_log_line(flow).rstrip("\n").split("\t"))) + "\n" for flow in flows[2:]]
    write(path, "#separator \\x09\n#fields\t" + "\t".join(columns) + "\n" + "".join(rows))
    assert following.take(2) == flows[2:]
    assert not following.report.skipped


def test_lines_written_just_before_rotation_are_not_lost(
    tmp_path: Path, follow: Callable[..., Following], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Zeek writes its last line and rotates between the follower's last read and its look at the file.
    flows = some_flows(3)
    path = write(tmp_path / "conn.log", log_text(flows[:1]))
    original = sources._replaced
    rotated = threading.Event()

    def replaced(name: str, identity: int, position: int) -> str | None:
        if not rotated.is_set():
            append(path, conn_log_line(flows[1]))
            os.rename(path, tmp_path / "conn.old.log")
            write(path, log_text(flows[2:]))
            rotated.set()
        return original(name, identity, position)

    monkeypatch.setattr(sources, "_replaced", replaced)
    following = follow(path)
    assert following.take(3) == flows
    assert not following.report.skipped


def test_truncation_is_followed(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flows = some_flows(5)
    path = write(tmp_path / "conn.log", log_text(flows[:3]))
    following = follow(path)
    assert following.take(3) == flows[:3]
    write(path, log_text(flows[3:4]))  # shorter than before
    assert following.take(1) == flows[3:4]
    append(path, conn_log_line(flows[4]))
    assert following.take(1) == flows[4:]
    assert following.quiet() and not following.report.skipped


def test_copytruncate_without_a_new_header_keeps_the_columns(tmp_path: Path, follow: Callable[..., Following]) -> None:
    # logrotate's copytruncate empties the file; the writer goes on with data lines only.
    flows = some_flows(3)
    path = write(tmp_path / "conn.log", log_text(flows[:2]))
    following = follow(path)
    assert following.take(2) == flows[:2]
    write(path, b"")
    time.sleep(3 * POLL)
    append(path, conn_log_line(flows[2]))
    assert following.take(1) == flows[2:]
    assert following.error is None


def test_from_the_end_reads_only_new_lines_of_a_tsv_log(
    tmp_path: Path, follow: Callable[..., Following], positioned: threading.Event
) -> None:
    # `machimori detect watch` starts at the end by default: the header is still needed for the columns.
    flows = some_flows(3)
    path = write(tmp_path / "conn.log", log_text(flows[:2]))
    following = follow(path, from_start=False)
    assert positioned.wait(2)
    append(path, conn_log_line(flows[2]) + "bad\tline\n")
    assert following.take(1) == flows[2:]
    assert following.quiet()
    assert following.error is None
    assert following.report.read == 1
    assert [problem.line for problem in following.report.examples] == [12]  # as `sed -n 12p` shows it


def test_from_the_end_amid_a_line_drops_only_that_line(
    tmp_path: Path, follow: Callable[..., Following], positioned: threading.Event
) -> None:
    flows = some_flows(3)
    half = conn_log_line(flows[1])[:30]
    path = write(tmp_path / "conn.log", log_text(flows[:1]) + half)
    following = follow(path, from_start=False)
    assert positioned.wait(2)
    append(path, conn_log_line(flows[1])[30:] + conn_log_line(flows[2]) + "bad\n")
    assert following.take(1) == flows[2:]
    assert following.quiet()
    assert following.report.skipped_total == 1 and following.report.examples[0].line == 12


def test_from_the_end_of_a_json_log(
    tmp_path: Path, follow: Callable[..., Following], positioned: threading.Event
) -> None:
    flows = some_flows(3)
    path = write(tmp_path / "conn.json", json_text(flows[:2]))
    following = follow(path, from_start=False)
    assert positioned.wait(2)
    append(path, json_text(flows[2:]))
    assert following.take(1) == flows[2:]


def test_a_log_that_appears_later_is_read_from_its_start(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flows = some_flows(2)
    path = tmp_path / "conn.log"
    following = follow(path, from_start=False)
    time.sleep(2 * POLL)
    write(path, log_text(flows))
    assert following.take(2) == flows


@pytest.mark.parametrize("exists", [True, False])
def test_stop_ends_following_promptly(tmp_path: Path, exists: bool) -> None:
    path = tmp_path / "conn.log"
    if exists:
        write(path, log_text(some_flows(2)))
    following = Following(path)
    following.take(2 if exists else 0, timeout=1)
    time.sleep(POLL)
    following.stop.set()
    following.thread.join(0.5)
    assert not following.thread.is_alive()
    assert following.error is None


def test_stop_ends_following_between_flows(tmp_path: Path) -> None:
    path = write(tmp_path / "conn.log", log_text(some_flows(100)))
    report, stop = ReadReport(), threading.Event()
    taken = []
    for flow in follow_conn_log(path, report, stop, poll=POLL):
        taken.append(flow)
        if len(taken) == 10:
            stop.set()
    assert len(taken) == 10


@pytest.mark.parametrize("kind", ["directory", "fifo", "gzip"])
def test_what_cannot_be_followed_is_an_input_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "conn.log"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # opening it would block until a writer comes
    else:
        write(path, gzip.compress(log_text(some_flows(2)).encode()))
    following = Following(path)
    following.thread.join(1)
    assert not following.thread.is_alive()
    assert isinstance(following.error, InputError)
    assert str(following.error).startswith(str(path))


def test_an_endless_line_being_written_keeps_memory_bounded(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flow = some_flows(1)[0]
    path = write(tmp_path / "conn.log", HEADER)
    junk = b"A" * 1_000_000
    tracemalloc.start()
    try:
        following = follow(path)
        for _ in range(8):
            append(path, junk)
        append(path, b"\n" + conn_log_line(flow).encode())
        assert following.take(1) == [flow]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert following.report.skipped == {"line too long / 行が長すぎます": 1}
    assert peak < 4_000_000  # the 8 MB line is not held


def test_follow_takes_crlf_and_bad_bytes(tmp_path: Path, follow: Callable[..., Following]) -> None:
    flows = some_flows(2)
    flows[1].history = "ShAD"
    bad = conn_log_line(flows[1]).encode().replace(b"\tShAD\t", b"\tS\xff\xfe\t")
    path = write(tmp_path / "conn.log", log_text(flows[:1]).replace("\n", "\r\n").encode() + bad)
    following = follow(path)
    first, second = following.take(2)
    assert first == flows[0]
    assert second.history == "S\ufffd\ufffd" and second.orig_h == flows[1].orig_h
