"""Zeek conn.log reader: TSV with `#fields` headers or JSON lines, from a file, a stream or a growing file."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

import orjson

from machimori.detection.flows import STANDARD_FIELDS, Flow, ipv4_number
from machimori.detection.reading import ReadReport
from machimori.diagnostics import InputError, Problem

#: Longest line taken; a longer one is skipped (a corrupt or hostile file cannot make a line take all memory).
MAX_LINE = 64 * 1024

_INTS = ("id.orig_p", "id.resp_p", "missed_bytes", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes")
_OPTIONAL_INTS = ("orig_bytes", "resp_bytes")
_BOOLS = {"T": True, "F": False, "true": True, "false": False}


class ConnLogReader:
    """Turns conn.log lines into flows, learning the columns from each `#fields` header it meets."""

    def __init__(self, name: str, report: ReadReport) -> None:
        self.name = name
        self.report = report
        self.encoding: str | None = None
        self.separator = "\t"
        self.unset = "-"
        self.empty = "(empty)"
        self.columns: dict[str, int] | None = None
        self.indices: tuple[int, ...] = ()
        self.width = 0

    def lines(self, numbered_lines: Iterable[tuple[int, str]]) -> Iterator[Flow]:
        """The flows of these (line number, line) pairs; bad lines are skipped and counted."""
        for number, line in numbered_lines:
            flow = self.line(number, line)
            if flow is not None:
                yield flow

    def line(self, number: int, line: str) -> Flow | None:
        """The flow of one line, or None for a header, a blank or a skipped line."""
        if len(line) > MAX_LINE:
            line = self._standard_part(line)  # a huge unknown column (a label, say) does not lose the flow
            if not line:
                self.report.skip(self.name, number, "line too long / 行が長すぎます")
                return None
        line = line.rstrip("\r\n")
        if not line.strip():
            return None
        if self.encoding is None:
            line = line.lstrip("\ufeff")  # a byte order mark an editor put first
            if not line.strip():
                return None
            start = line.strip()
            # A JSON log cut at its start (a `tail -c`) begins with the end of an object.
            json_like = not start.startswith("#") and (start.startswith("{") or start.endswith("}"))
            self.encoding = "json" if json_like else "tsv"
        if line.startswith("#"):
            self._header(number, line)
            return None
        try:
            flow = self._json(line) if self.encoding == "json" else self._tsv(number, line)
        except _BadLine as bad:
            self._skip(number, bad)
            return None
        self.report.read += 1
        return flow

    def _standard_part(self, line: str) -> str:
        """Of an over-long TSV line, the columns up to the last standard one if they are whole, else ""."""
        if self.encoding != "tsv" or self.columns is None or line.startswith("#"):
            return ""
        parts = line.split(self.separator, self.width)
        return self.separator.join(parts[: self.width]) if len(parts) > self.width else ""

    def _skip(self, number: int, bad: _BadLine) -> None:
        """Count a skipped line under its reason; a kept example also shows the offending value."""
        kept = len(self.report.examples)
        self.report.skip(self.name, number, bad.reason)
        if bad.value is not None and len(self.report.examples) > kept:
            self.report.examples[-1] = Problem(self.name, number, 0, f"{bad.reason}: {_shown(bad.value)}")

    def _header(self, number: int, line: str) -> None:
        if self.encoding == "json":
            self.report.skip(self.name, number, "header line in a JSON log / JSON ログ中のヘッダ行")
            return
        keyword, _, value = line.partition(" ") if line.startswith("#separator") else line.partition(self.separator)
        if keyword == "#separator":
            try:
                self.separator = value.strip().encode().decode("unicode_escape") or "\t"
            except UnicodeDecodeError:
                self._skip(number, _BadLine("#separator is not readable / #separator が読めません", value))
        elif keyword == "#unset_field":
            self.unset = value
        elif keyword == "#empty_field":
            self.empty = value
        elif keyword == "#fields":
            # Field names never hold spaces; IoT-23's labelled logs join their last columns with spaces.
            names = value.split(self.separator) if self.separator.strip() else value.split()
            names = [part for name in names for part in name.split()]
            self.columns = {name: index for index, name in enumerate(names)}
            missing = [field for field in ("ts", "id.orig_h", "id.resp_h") if field not in self.columns]
            if missing:
                raise InputError.single(
                    self.name, f"#fields lacks {', '.join(missing)} / #fields に必須の列がありません", number
                )
            self.width = 1 + max(self.columns[field] for field in STANDARD_FIELDS if field in self.columns)
            self.indices = tuple(self.columns.get(field, -1) for field in STANDARD_FIELDS)

    def _tsv(self, number: int, line: str) -> Flow:
        if self.columns is None:
            raise InputError.single(
                self.name,
                "no #fields header before the first record: not a Zeek TSV log / #fields ヘッダがありません",
                number,
            )
        parts = line.split(self.separator)
        if len(parts) < self.width:
            raise _BadLine("too few columns (truncated line?) / 列が足りません (途中で切れた行?)", None)
        parts.append(self.unset)  # a standard field the log lacks reads this (index -1): unset
        try:
            return self._fast(parts)
        except (ValueError, TypeError, OverflowError, KeyError):
            pass
        values = {field: parts[index] for field, index in zip(STANDARD_FIELDS, self.indices, strict=True)}
        return _flow({field: value for field, value in values.items() if value not in (self.unset, self.empty)})

    def _fast(self, parts: list[str]) -> Flow:
        """The flow of a well-formed line (any surprise raises, and the careful path names the column)."""
        unset, empty = self.unset, self.empty
        (ts, uid, orig_h, orig_p, resp_h, resp_p, proto, service, duration, orig_bytes, resp_bytes, state,
         local_orig, local_resp, missed, history, orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes) = (
            [parts[index] for index in self.indices]
        )  # fmt: skip
        seconds = float(ts)
        if (
            not 0 <= seconds < 2**34
            or orig_h in (unset, empty)
            or resp_h in (unset, empty)
            or not is_address(orig_h)
            or not is_address(resp_h)
            or (uid != unset and not _UID.fullmatch(uid))
        ):
            raise ValueError("needs the careful path")
        flow = Flow(
            seconds,
            "" if uid == unset else uid,
            orig_h,
            0 if orig_p == unset else _port(orig_p),
            resp_h,
            0 if resp_p == unset else _port(resp_p),
            "" if proto == unset else proto.lower(),
            "" if service in (unset, empty) else service.lower(),
            None if duration == unset else _seconds(duration),
            None if orig_bytes == unset else _count(orig_bytes),
            None if resp_bytes == unset else _count(resp_bytes),
            "" if state == unset else state,
            None if local_orig == unset else _BOOLS[local_orig],
            None if local_resp == unset else _BOOLS[local_resp],
            0 if missed == unset else _count(missed),
            "" if history in (unset, empty) else history,
            0 if orig_pkts == unset else _count(orig_pkts),
            0 if orig_ip_bytes == unset else _count(orig_ip_bytes),
            0 if resp_pkts == unset else _count(resp_pkts),
            0 if resp_ip_bytes == unset else _count(resp_ip_bytes),
        )
        return flow

    def _json(self, line: str) -> Flow:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            try:  # what orjson refuses but JSON allows (NaN, numbers beyond 64 bits) goes to the careful path
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise _BadLine("not JSON / JSON として読めません", None) from None
        if not isinstance(record, dict):
            raise _BadLine("not a JSON object / JSON オブジェクトではありません", None)
        flow = _json_fast(record)
        if flow is not None:
            return flow
        # Only the standard keys are looked at; null is taken as unset, like an absent key.
        return _flow({field: record[field] for field in STANDARD_FIELDS if record.get(field) is not None})


_TEXTS = (str, type(None))
_NUMBERS = (int, float)


def _json_fast(record: dict[str, Any]) -> Flow | None:
    """The flow of a well-formed JSON record, or None to leave it to the careful path (which names the problem)."""
    get = record.get
    ts: Any = get("ts")
    orig_h, resp_h, uid = get("id.orig_h"), get("id.resp_h"), get("uid") or ""
    if type(ts) not in _NUMBERS or not 0 <= ts < 2**34:  # ISO text, bool, nan: the careful path decides
        return None
    if type(orig_h) is not str or type(resp_h) is not str or not is_address(orig_h) or not is_address(resp_h):
        return None
    if type(uid) is not str or (uid and not _UID.fullmatch(uid)):
        return None
    proto, service, state, history = (
        get("proto") or "",
        get("service") or "",
        get("conn_state") or "",
        get("history") or "",
    )
    if type(proto) is not str or type(service) is not str or type(state) is not str or type(history) is not str:
        return None
    duration = get("duration")
    if duration is not None and (type(duration) not in _NUMBERS or not 0 <= duration < 2**34):
        return None
    local_orig, local_resp = get("local_orig"), get("local_resp")
    if (local_orig is not None and type(local_orig) is not bool) or (
        local_resp is not None and type(local_resp) is not bool
    ):
        return None
    counts = tuple(map(get, _JSON_COUNTS))
    for value in counts:
        if value is not None and (type(value) is not int or not 0 <= value < 2**63):
            return None
    orig_p, resp_p, orig_bytes, resp_bytes, missed, orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes = counts
    if (orig_p is not None and orig_p > 65535) or (resp_p is not None and resp_p > 65535):
        return None
    return Flow(
        float(ts),
        uid,
        orig_h,
        orig_p or 0,
        resp_h,
        resp_p or 0,
        proto.lower(),
        service.lower(),
        None if duration is None else float(duration),
        orig_bytes,
        resp_bytes,
        state,
        local_orig,
        local_resp,
        missed or 0,
        history,
        orig_pkts or 0,
        orig_ip_bytes or 0,
        resp_pkts or 0,
        resp_ip_bytes or 0,
    )


_JSON_COUNTS = (
    "id.orig_p",
    "id.resp_p",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
)


class _BadLine(ValueError):
    """A line that is skipped: the reason (a few fixed texts, so counting them stays bounded) and the bad value."""

    def __init__(self, reason: str, value: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


def _shown(value: Any) -> str:
    """A bad value as an example shows it: short, quoted, control characters escaped."""
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, (bool, float)) or (isinstance(value, int) and abs(value) < 10**40):
        return repr(value)
    return "a large number" if isinstance(value, int) else f"a JSON {type(value).__name__}"


def _flow(values: dict[str, Any]) -> Flow:
    """A flow from the standard fields present; a wrong type names its column."""
    for field in ("ts", "id.orig_h", "id.resp_h"):
        if field not in values:
            raise _BadLine(f"{field} is missing / {field} がありません", None)
    ints = {field: _int(field, values[field]) for field in _INTS if field in values}
    optional = {field: _int(field, values[field]) for field in _OPTIONAL_INTS if field in values}
    for field in ("id.orig_p", "id.resp_p"):
        if ints.get(field, 0) > 65535:
            raise _BadLine(f"{field} is not a port / {field} がポート番号ではありません", ints[field])
    return Flow(
        ts=_time(values["ts"]),
        uid=_uid(values),
        orig_h=_address("id.orig_h", values["id.orig_h"]),
        orig_p=ints.get("id.orig_p", 0),
        resp_h=_address("id.resp_h", values["id.resp_h"]),
        resp_p=ints.get("id.resp_p", 0),
        proto=_text("proto", values).lower(),
        service=_text("service", values).lower(),
        duration=_duration(values.get("duration")),
        orig_bytes=optional.get("orig_bytes"),
        resp_bytes=optional.get("resp_bytes"),
        conn_state=_text("conn_state", values),
        local_orig=_bool("local_orig", values.get("local_orig")),
        local_resp=_bool("local_resp", values.get("local_resp")),
        missed_bytes=ints.get("missed_bytes", 0),
        history=_text("history", values),
        orig_pkts=ints.get("orig_pkts", 0),
        orig_ip_bytes=ints.get("orig_ip_bytes", 0),
        resp_pkts=ints.get("resp_pkts", 0),
        resp_ip_bytes=ints.get("resp_ip_bytes", 0),
    )


def _count(text: str) -> int:
    number = int(text)
    if not 0 <= number < 2**63:
        raise ValueError("out of range")
    return number


def _port(text: str) -> int:
    number = int(text)
    if not 0 <= number <= 65535:
        raise ValueError("out of range")
    return number


def _seconds(text: str) -> float:
    seconds = float(text)
    if not 0 <= seconds < 2**34:  # also refuses nan
        raise ValueError("out of range")
    return seconds


def _int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _BadLine(f"{field} is not a count / {field} が数値ではありません", value)
    try:
        number = int(value)
    except ValueError:
        raise _BadLine(f"{field} is not a count / {field} が数値ではありません", value) from None
    if not 0 <= number < 2**63:
        raise _BadLine(f"{field} is out of range / {field} が範囲外です", number)
    return number


def _time(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError("a bool is not a time")
        if isinstance(value, str) and ("T" in value or "-" in value[1:]):
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            seconds = moment.timestamp()
        else:
            seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _BadLine("ts is not a time / ts が時刻ではありません", value) from None
    if not math.isfinite(seconds) or not 0 <= seconds < 2**34:
        raise _BadLine("ts is out of range / ts が範囲外です", seconds)
    return seconds


def _duration(value: Any) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError("a bool is not a duration")
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _BadLine("duration is not a number / duration が数値ではありません", value) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _BadLine("duration is out of range / duration が範囲外です", seconds)
    return seconds


def _address(field: str, value: Any) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise _BadLine(f"{field} is not an address / {field} がアドレスではありません", value)
    return value


@lru_cache(maxsize=65536)
def is_address(text: str) -> bool:
    """Whether the text is an IPv4 or IPv6 address (a zone after `%` allowed), as Zeek writes `addr` fields."""
    return ipv4_number(text) is not None or _is_other_address(text)


@lru_cache(maxsize=65536)
def _is_other_address(text: str) -> bool:
    if not text or len(text) > 64:
        return False
    address, _, zone = text.partition("%")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return zone.isalnum() or not zone


#: What a flow's uid may look like (Zeek's are "C" and base62; others use - _ . :). Anything else — a formula
#: for a spreadsheet (`=HYPERLINK(…)`), markup, control characters — is refused before it reaches a scores file.
_UID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _text(field: str, values: dict[str, Any]) -> str:
    value = values.get(field, "")
    if isinstance(value, str):
        return value
    if field == "uid" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _BadLine(f"{field} is not a string / {field} が文字列ではありません", value)


def _uid(values: dict[str, Any]) -> str:
    uid = _text("uid", values)
    if uid and not _UID.fullmatch(uid):
        raise _BadLine("uid has characters a uid never has / uid に使えない文字があります", uid)
    return uid


def _bool(field: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _BOOLS:
        return _BOOLS[value]
    raise _BadLine(f"{field} is not a bool / {field} が真偽値ではありません", value)


_TYPES = {
    "ts": "time",
    "uid": "string",
    "id.orig_h": "addr",
    "id.orig_p": "port",
    "id.resp_h": "addr",
    "id.resp_p": "port",
    "proto": "enum",
    "service": "string",
    "duration": "interval",
    "conn_state": "string",
    "local_orig": "bool",
    "local_resp": "bool",
    "history": "string",
}


def conn_log_header(opened: float) -> str:
    """The header lines of a Zeek TSV conn.log with the standard fields."""
    stamp = dt.datetime.fromtimestamp(opened, dt.UTC).strftime("%Y-%m-%d-%H-%M-%S")
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
        f"#open\t{stamp}\n#fields\t"
        + "\t".join(STANDARD_FIELDS)
        + "\n#types\t"
        + "\t".join(_TYPES.get(field, "count") for field in STANDARD_FIELDS)
        + "\n"
    )


def conn_log_line(flow: Flow) -> str:
    """One flow as a line of a Zeek TSV conn.log (unset fields as `-`)."""
    values = (
        f"{flow.ts:.6f}",
        flow.uid,
        flow.orig_h,
        flow.orig_p,
        flow.resp_h,
        flow.resp_p,
        flow.proto,
        flow.service,
        "-" if flow.duration is None else f"{flow.duration:.6f}",
        flow.orig_bytes,
        flow.resp_bytes,
        flow.conn_state,
        None if flow.local_orig is None else "TF"[not flow.local_orig],
        None if flow.local_resp is None else "TF"[not flow.local_resp],
        flow.missed_bytes,
        flow.history,
        flow.orig_pkts,
        flow.orig_ip_bytes,
        flow.resp_pkts,
        flow.resp_ip_bytes,
    )
    return "\t".join("-" if value is None or value == "" else str(value) for value in values) + "\n"
