"""Ground truth and scores for evaluation: labels from a labelled conn.log or a CSV, and a detector's scores CSV."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from machimori.detection.reading import ReadReport
from machimori.detection.sources import bounded_lines
from machimori.detection.zeek import MAX_LINE
from machimori.diagnostics import InputError, Problem

#: Labels (compared in lower case) that mean benign; every other label means malicious.
BENIGN_LABELS = frozenset({"benign", "normal", "background", "0", "false"})

#: Longest uid taken; a longer one is skipped (one hostile uid cannot widen every stored uid).
MAX_UID = 64

#: Most attack kinds told apart; further kinds are counted together as OTHER_KIND (memory stays bounded).
MAX_KINDS = 1000
OTHER_KIND = "(other)"

#: Rows gathered in Python lists before they are packed into numpy arrays.
_CHUNK = 65536
_UNSET = frozenset({"", "-", "(empty)"})

Uids = npt.NDArray[np.bytes_]
Floats = npt.NDArray[np.float64]


@dataclass
class Labels:
    """Labelled flows as columns: uid, time (NaN when unknown), malicious or not, and the attack kind's code."""

    uids: Uids
    ts: Floats
    malicious: npt.NDArray[np.bool_]
    kinds: npt.NDArray[np.int32]
    kind_names: list[str]


@dataclass
class Scores:
    """Scored flows as columns: uid and score."""

    uids: Uids
    scores: Floats


class _BadLine(ValueError):
    """A line that is skipped: the reason it is counted under, and the offending value for the example shown."""

    def __init__(self, reason: str, value: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


def _skip(report: ReadReport, name: str, number: int, bad: _BadLine) -> None:
    """Count a skipped line under its reason; a kept example also shows the offending value."""
    kept = len(report.examples)
    report.skip(name, number, bad.reason)
    if bad.value is not None and len(report.examples) > kept:
        report.examples[-1] = Problem(name, number, 0, f"{bad.reason}: {str(bad.value)[:40]!r}")


class _LabelColumns:
    """Gathers labels row by row into compact numpy chunks."""

    def __init__(self) -> None:
        self.uids: list[bytes] = []
        self.ts: list[float] = []
        self.malicious: list[bool] = []
        self.kinds: list[int] = []
        self.kind_codes: dict[str, int] = {}
        self.meanings: dict[tuple[str, str], tuple[bool, int]] = {}
        self.chunks: list[tuple[Uids, Floats, npt.NDArray[np.bool_], npt.NDArray[np.int32]]] = []

    def add(self, uid: str, ts: float, label: str, detail: str) -> None:
        """One labelled flow; a missing uid or label raises _BadLine."""
        key = _uid(uid)
        malicious, code = self.meanings.get((label, detail)) or self._meaning(label, detail)
        self.uids.append(key)
        self.ts.append(ts)
        self.malicious.append(malicious)
        self.kinds.append(code)
        if len(self.uids) >= _CHUNK:
            self._pack()

    def _meaning(self, label: str, detail: str) -> tuple[bool, int]:
        """Whether a label means malicious, and its attack kind's code (remembered for the next lines)."""
        name = label.strip()
        if name in _UNSET:
            raise _BadLine("no label / ラベルがありません")
        kind = name if detail.strip() in _UNSET else detail.strip()
        if kind not in self.kind_codes and len(self.kind_codes) >= MAX_KINDS:
            kind = OTHER_KIND
        meaning = (name.lower() not in BENIGN_LABELS, self.kind_codes.setdefault(kind, len(self.kind_codes)))
        if len(self.meanings) < MAX_KINDS:
            self.meanings[label, detail] = meaning
        return meaning

    def _pack(self) -> None:
        self.chunks.append(
            (
                _bytes_array(self.uids),
                np.array(self.ts, np.float64),
                np.array(self.malicious, np.bool_),
                np.array(self.kinds, np.int32),
            )
        )
        self.uids, self.ts, self.malicious, self.kinds = [], [], [], []

    def finish(self) -> Labels:
        """The gathered labels."""
        self._pack()
        uids, ts, malicious, kinds = zip(*self.chunks, strict=True)
        return Labels(
            np.concatenate(uids),
            np.concatenate(ts),
            np.concatenate(malicious),
            np.concatenate(kinds),
            list(self.kind_codes),
        )


def _bytes_array(uids: list[bytes]) -> Uids:
    return np.array(uids, dtype=np.bytes_) if uids else np.zeros(0, dtype="S1")


def _uid(uid: str) -> bytes:
    uid = uid.strip()
    if uid in _UNSET:
        raise _BadLine("no uid / uid がありません")
    if len(uid) > MAX_UID:
        raise _BadLine("uid too long / uid が長すぎます", uid)
    return uid.encode()


def _timestamp(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 string; NaN when unset."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return _written_time(value)
    if not math.isfinite(seconds):
        raise _BadLine("ts out of range / ts が範囲外です", value)
    return seconds


def _written_time(value: Any) -> float:
    """Epoch seconds from an ISO 8601 string; NaN when unset."""
    if value is None or (isinstance(value, str) and value.strip() in _UNSET):
        return math.nan
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
    except (ValueError, OverflowError):
        raise _BadLine("ts is not a time / ts が時刻ではありません", value) from None


def _text(value: Any) -> str:
    """A JSON value as label text (false → "false", 1 → "1"); None → ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@contextmanager
def _numbered_lines(path: str | Path) -> Iterator[Iterator[tuple[int, str]]]:
    """The numbered lines of a user's text file, plain or gzip; an unreadable file is an InputError."""
    name = str(path)
    try:
        with open(name, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        handle: IO[str] = (
            io.TextIOWrapper(gzip.open(name, "rb"), encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
            if gzipped
            else open(name, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        )
    except FileNotFoundError:
        raise InputError.single(name, "file not found / ファイルが見つかりません") from None
    except IsADirectoryError:
        raise InputError.single(name, "is a directory, expected a file / ディレクトリです") from None
    except OSError as exc:
        raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None
    with handle:
        yield enumerate(bounded_lines(handle), start=1)


def read_labels(
    paths: Iterable[str | Path],
    report: ReadReport,
    *,
    label_column: str = "label",
    detail_column: str = "detailed-label",
) -> Labels:
    """The labels of labelled conn.logs (TSV or JSON lines) or CSV files `uid,label[,detail]`, told apart by content."""
    columns = _LabelColumns()
    for path in paths:
        with _numbered_lines(path) as lines:
            _read_label_file(str(path), lines, report, columns, label_column, detail_column)
    return columns.finish()


def _read_label_file(
    name: str, lines: Iterator[tuple[int, str]], report: ReadReport, columns: _LabelColumns, label: str, detail: str
) -> None:
    for number, line in lines:
        head = line.lstrip()
        if not head:
            continue
        rest = _chain((number, line), lines)
        if head.startswith("#"):
            _TsvLabels(name, report, columns, label, detail).read(rest)
        elif head.startswith("{"):
            _read_json_labels(name, rest, report, columns, label, detail)
        else:
            _read_csv_labels(name, (text for _, text in rest), number - 1, report, columns, label, detail)
        return


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


class _TsvLabels:
    """Reads uid, ts and the label columns of a Zeek TSV log, learning the columns from each `#fields` header."""

    def __init__(self, name: str, report: ReadReport, columns: _LabelColumns, label: str, detail: str) -> None:
        self.name, self.report, self.columns = name, report, columns
        self.label, self.detail = label, detail
        self.separator = "\t"
        self.width = 0
        self.indices: tuple[int, int, int, int] | None = None

    def read(self, lines: Iterable[tuple[int, str]]) -> None:
        """Read every line; bad lines are counted in the report."""
        for number, raw in lines:
            line = raw.rstrip("\r\n")
            if not line or line.isspace():
                continue
            if line[0] == "#":
                self._header(number, line)
                continue
            try:
                self._record(number, line)
            except _BadLine as bad:
                _skip(self.report, self.name, number, bad)

    def _header(self, number: int, line: str) -> None:
        if line.startswith("#separator"):
            self.separator = line.partition(" ")[2].strip().encode().decode("unicode_escape") or "\t"
            return
        keyword, _, value = line.partition(self.separator)
        if keyword != "#fields":
            return
        # Field names never hold spaces; IoT-23's labelled logs join their last columns with runs of spaces.
        names = [part for name in value.split(self.separator) for part in name.split()]
        where = {name: index for index, name in enumerate(names)}
        missing = [column for column in ("uid", self.label) if column not in where]
        if missing:
            raise InputError.single(
                self.name,
                f"#fields lacks {', '.join(missing)} (label column: --label-column) / #fields に {', '.join(missing)} 列がありません",
                number,
            )
        self.width = len(names)
        self.indices = (where["uid"], where.get("ts", -1), where[self.label], where.get(self.detail, -1))

    def _record(self, number: int, line: str) -> None:
        if len(line) > MAX_LINE:
            raise _BadLine("line too long / 行が長すぎます")
        if self.indices is None:
            raise InputError.single(
                self.name, "no #fields header before the first record / #fields ヘッダがありません", number
            )
        parts = line.split(self.separator)
        if len(parts) < self.width:
            parts[-1:] = parts[-1].split()  # IoT-23: the last columns separated by spaces
        if len(parts) != self.width:
            raise _BadLine("columns do not match #fields / 列の数が #fields と合いません")
        parts.append("-")  # what an absent ts or detail column (index -1) reads
        uid, ts, label, detail = self.indices
        self.columns.add(parts[uid], _timestamp(parts[ts]), parts[label], parts[detail])
        self.report.read += 1


def _read_json_labels(
    name: str, lines: Iterable[tuple[int, str]], report: ReadReport, columns: _LabelColumns, label: str, detail: str
) -> None:
    checked = False
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = _json_record(line)
            if not checked:
                _require(name, number, record, label)
                checked = True
            columns.add(
                _text(record.get("uid")),
                _timestamp(record.get("ts")),
                _text(record.get(label)),
                _text(record.get(detail)),
            )
        except _BadLine as bad:
            _skip(report, name, number, bad)
            continue
        report.read += 1


def _json_record(line: str) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise _BadLine("line too long / 行が長すぎます")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        raise _BadLine("not a JSON object / JSON として読めません") from None
    if not isinstance(record, dict):
        raise _BadLine("not a JSON object / JSON オブジェクトではありません")
    return record


def _require(name: str, number: int, record: dict[str, Any], label: str) -> None:
    """The first JSON record decides: a log whose records lack uid or the label column is an InputError."""
    missing = [column for column in ("uid", label) if column not in record]
    if missing:
        raise InputError.single(
            name,
            f"records lack {', '.join(missing)} (label column: --label-column) / {', '.join(missing)} がありません",
            number,
        )


def _read_csv_labels(
    name: str, lines: Iterable[str], offset: int, report: ReadReport, columns: _LabelColumns, label: str, detail: str
) -> None:
    """Labels from a CSV whose header names uid and the label column (detail and ts optional); lines after `offset`."""
    reader = csv.reader(lines)
    header = [cell.strip() for cell in next(reader)]
    where = {cell: index for index, cell in enumerate(header)}
    if "uid" not in where or label not in where:
        raise InputError.single(
            name,
            f"the header must name uid and {label}: uid,{label}[,detail] / ヘッダに uid と {label} 列が必要です",
            offset + 1,
        )
    indices = (where["uid"], where.get("ts", -1), where[label], where.get(detail, where.get("detail", -1)))
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        try:
            if len(row) < len(header):
                raise _BadLine("too few columns / 列が足りません")
            row.append("-")
            uid, ts, value, kind = (row[index] for index in indices)
            columns.add(uid, _timestamp(ts), value, kind)
        except _BadLine as bad:
            _skip(report, name, offset + reader.line_num, bad)
            continue
        report.read += 1


def read_scores(path: str | Path, report: ReadReport) -> Scores:
    """The scores of a detector's CSV (header naming `uid` and `score`); bad rows are counted in the report."""
    name = str(path)
    uids: list[bytes] = []
    values: list[float] = []
    chunks: list[tuple[Uids, Floats]] = []
    with _numbered_lines(path) as lines:
        reader = csv.reader(line for _, line in lines)
        header = [cell.strip() for cell in next(reader, [])]
        if "uid" not in header or "score" not in header:
            raise InputError.single(
                name, "no header naming uid and score (uid,device,score,reasons) / ヘッダがありません", 1
            )
        wanted = (header.index("uid"), header.index("score"))
        for row in reader:
            if not row:
                continue
            try:
                uid, score = _score_row(row, wanted)
            except _BadLine as bad:
                _skip(report, name, reader.line_num, bad)
                continue
            uids.append(uid)
            values.append(score)
            report.read += 1
            if len(uids) >= _CHUNK:
                chunks.append((_bytes_array(uids), np.array(values, np.float64)))
                uids, values = [], []
    chunks.append((_bytes_array(uids), np.array(values, np.float64)))
    return Scores(np.concatenate([uid for uid, _ in chunks]), np.concatenate([score for _, score in chunks]))


def _score_row(row: list[str], wanted: tuple[int, int]) -> tuple[bytes, float]:
    """The uid and score of one row of the scores CSV."""
    if len(row) <= max(wanted):
        raise _BadLine("too few columns / 列が足りません")
    text = row[wanted[1]]
    try:
        score = float(text)
    except ValueError:
        raise _BadLine("score is not a number / スコアが数値ではありません", text) from None
    if not math.isfinite(score):
        raise _BadLine("score is not finite / スコアが有限の数ではありません", text)
    return _uid(row[wanted[0]]), score
