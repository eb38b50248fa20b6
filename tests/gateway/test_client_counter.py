"""The device's message counter: written ahead to a file (RFC 8613, Appendix B.1.1) so that a restart skips
counters but never repeats one — the gateway would refuse a repeated counter as a replay."""

from __future__ import annotations

import itertools
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machimori.gateway import client
from machimori.gateway.client import RESERVE, Counter


def on_disk(path: Path) -> int:
    return int(path.read_text(encoding="ascii"))


class Writes:
    """Counts the durable writes, passing each through to the real one."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.real = client._write_durably

    def __call__(self, path: Path, text: str) -> None:
        self.texts.append(text)
        self.real(path, text)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    counting = Writes()
    monkeypatch.setattr(client, "_write_durably", counting)
    return counting


def test_in_memory_counter_counts_up_from_start() -> None:
    counter = Counter()
    assert [counter.next() for _ in range(3)] == [1, 2, 3]
    counter = Counter(start=41)
    assert [counter.next() for _ in range(3)] == [42, 43, 44]


def test_the_file_is_ahead_of_every_counter_handed_out(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    counter = Counter(path)
    for _ in range(3 * RESERVE + 7):
        value = counter.next()
        assert on_disk(path) >= value  # written before it was handed out
    assert not (tmp_path / "counter.tmp").exists()


def test_a_restart_continues_above_every_counter_handed_out(tmp_path: Path) -> None:
    path = tmp_path / "state" / "counter"
    path.parent.mkdir()
    handed: list[int] = []
    for run_length in (1, RESERVE, RESERVE + 1, 0, 3, 250, 2):  # "crash" after each run: no clean shutdown
        counter = Counter(path)
        handed += [counter.next() for _ in range(run_length)]
    assert len(handed) == len(set(handed))
    assert handed == sorted(handed)
    assert Counter(path).next() > max(handed)


@settings(max_examples=40, deadline=None)
@given(runs=st.lists(st.integers(min_value=0, max_value=3 * RESERVE), max_size=6))
def test_restarts_never_repeat_a_counter(tmp_path_factory: pytest.TempPathFactory, runs: list[int]) -> None:
    path = tmp_path_factory.mktemp("device") / "counter"
    handed: list[int] = []
    for run_length in runs:
        counter = Counter(path)
        for _ in range(run_length):
            value = counter.next()
            assert not handed or value > handed[-1]
            handed.append(value)
    if handed:
        assert on_disk(path) >= handed[-1]
        assert handed[-1] - handed[0] + 1 <= len(handed) + len(runs) * RESERVE  # a restart skips at most RESERVE


def test_a_restart_skips_at_most_the_reserve(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    first = Counter(path)
    assert [first.next() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert Counter(path).next() == RESERVE + 2  # reserved 1 + RESERVE on the first call


def test_one_write_per_reserve(tmp_path: Path, writes: Writes) -> None:
    counter = Counter(tmp_path / "counter")
    total = 10 * RESERVE
    for _ in range(total):
        counter.next()
    assert 1 <= len(writes.texts) <= -(-total // RESERVE)  # at most one write per RESERVE counters
    values = [int(text) for text in writes.texts]
    assert values == sorted(set(values))
    assert all(later - earlier >= RESERVE for earlier, later in itertools.pairwise(values))


def test_no_write_without_a_file(writes: Writes) -> None:
    counter = Counter()
    for _ in range(3 * RESERVE):
        counter.next()
    assert writes.texts == []


def test_start_is_used_only_without_a_file(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    assert Counter(path, start=1000).next() == 1001
    assert on_disk(path) == 1001 + RESERVE
    assert Counter(path, start=5).next() == 1002 + RESERVE  # the file wins: never back to 6


def test_a_failed_write_hands_out_nothing_and_reserves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the write-ahead fails (disk full), no counter beyond what is on disk may be handed out — not now and not
    on the next call either, or a restart would repeat it."""
    path = tmp_path / "counter"
    counter = Counter(path)
    for _ in range(RESERVE + 1):
        counter.next()  # the first RESERVE + 1 counters are covered by the first write
    reserved = on_disk(path)
    handed_before_failure = RESERVE + 1

    def full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(client, "_write_durably", full)
    with pytest.raises(OSError):
        counter.next()
    with pytest.raises(OSError):
        counter.next()  # still nothing reserved: must try to write again, not hand out an unreserved counter
    assert on_disk(path) == reserved == handed_before_failure
    monkeypatch.undo()
    after = counter.next()
    assert after > handed_before_failure
    assert on_disk(path) >= after
    assert Counter(path).next() > after


def test_counters_are_unique_across_threads(tmp_path: Path) -> None:
    counter = Counter(tmp_path / "counter")
    results: list[list[int]] = [[] for _ in range(8)]

    def work(into: list[int]) -> None:
        for _ in range(300):
            into.append(counter.next())

    threads = [threading.Thread(target=work, args=(into,)) for into in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for into in results for value in into]
    assert sorted(everything) == list(range(1, 8 * 300 + 1))
    assert all(into == sorted(into) for into in results)


def test_the_write_is_synced_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync of the file, then of its directory so that the rename itself survives a power cut."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    Counter(tmp_path / "counter").next()
    assert synced == ["file", "directory"]


def test_the_file_is_plain_ascii_digits(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    Counter(path).next()
    assert path.read_bytes() == str(1 + RESERVE).encode("ascii")
