"""The Zeek conn.log reader and writer, fed as an attacker and as a tired CSIRT analyst would feed it: shuffled and
unknown columns, IoT-23's labelled logs, JSON lines, wrong types, truncated and over-long lines — bad lines are
skipped and counted by a reason that names the column, never a crash."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machimori.detection.flows import STANDARD_FIELDS, Flow
from machimori.detection.reading import EXAMPLES_KEPT, ReadReport
from machimori.detection.zeek import MAX_LINE, ConnLogReader, conn_log_header, conn_log_line
from machimori.diagnostics import InputError

T0 = 1_700_000_000.0
NAME = "conn.log"
HEADER = conn_log_header(T0)


def a_flow(**changes: Any) -> Flow:
    """A camera's connection with every field set; `changes` override some."""
    values: dict[str, Any] = {
        "ts": T0 + 0.123456,
        "uid": "CAbc123",
        "orig_h": "10.20.0.15",
        "orig_p": 51234,
        "resp_h": "203.0.113.9",
        "resp_p": 23,
        "proto": "tcp",
        "service": "telnet",
        "duration": 1.5,
        "orig_bytes": 35,
        "resp_bytes": 51,
        "conn_state": "SF",
        "local_orig": True,
        "local_resp": False,
        "missed_bytes": 7,
        "history": "ShADadFf",
        "orig_pkts": 3,
        "orig_ip_bytes": 163,
        "resp_pkts": 2,
        "resp_ip_bytes": 131,
    }
    values.update(changes)
    return Flow(**values)


def fields_of(flow: Flow) -> dict[str, str]:
    """A flow's standard fields as conn_log_line writes them, by column name."""
    return dict(zip(STANDARD_FIELDS, conn_log_line(flow).rstrip("\n").split("\t"), strict=True))


def numbered(text: str) -> list[tuple[int, str]]:
    """The lines of a text as a file reader gives them: split at "\\n" only, each with its number."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
        return [(number, line + "\n") for number, line in enumerate(lines, start=1)]
    return [(number, line + "\n") for number, line in enumerate(lines[:-1], start=1)] + [(len(lines), lines[-1])]


def read(text: str) -> tuple[list[Flow], ReadReport]:
    """The flows of a conn.log text and what was skipped."""
    report = ReadReport()
    return list(ConnLogReader(NAME, report).lines(numbered(text))), report


def table(columns: list[str], rows: Iterable[Iterable[str]], *, separator: str = "\t") -> str:
    """A TSV conn.log with these columns (in this order) and rows."""
    head = "#separator " + "".join(f"\\x{ord(c):02x}" for c in separator) + "\n"
    head += f"#unset_field{separator}-\n#empty_field{separator}(empty)\n"
    head += "#fields" + separator + separator.join(columns) + "\n"
    return head + "".join(separator.join(row) + "\n" for row in rows)


# --- the TSV writer and reader together ---------------------------------------------------------------------------


def test_every_field_round_trips() -> None:
    flow = a_flow()
    flows, report = read(HEADER + conn_log_line(flow))
    assert flows == [flow]
    assert report.read == 1 and not report.skipped


def test_unset_fields_are_written_as_dash_and_read_back_unset() -> None:
    flow = a_flow(
        uid="",
        service="",
        duration=None,
        orig_bytes=None,
        resp_bytes=None,
        conn_state="",
        local_orig=None,
        local_resp=None,
        history="",
    )
    line = conn_log_line(flow)
    written = fields_of(flow)
    for field in ("uid", "service", "duration", "orig_bytes", "resp_bytes", "local_orig", "history"):
        assert written[field] == "-", field
    assert read(HEADER + line)[0] == [flow]


def test_zero_is_not_unset() -> None:
    flow = a_flow(duration=0.0, orig_bytes=0, resp_bytes=0, orig_p=0, resp_p=0, missed_bytes=0, orig_pkts=0)
    assert read(HEADER + conn_log_line(flow))[0] == [flow]


def test_header_declares_every_standard_field_with_a_type() -> None:
    lines = HEADER.splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    types = next(line for line in lines if line.startswith("#types")).split("\t")[1:]
    assert tuple(fields) == STANDARD_FIELDS
    assert len(types) == len(fields)
    assert dict(zip(fields, types, strict=True))["ts"] == "time"
    assert lines[0] == "#separator \\x09"


def test_empty_set_and_empty_string_read_as_empty() -> None:
    values = fields_of(a_flow())
    values.update(service="(empty)", history="(empty)", local_orig="(empty)")
    columns = [*STANDARD_FIELDS, "tunnel_parents"]
    flows, report = read(table(columns, [[*values.values(), "(empty)"]]))
    assert flows == [a_flow(service="", history="", local_orig=None)]
    assert not report.skipped


def test_a_minimal_log_has_defaults_for_the_fields_it_lacks() -> None:
    flows, _ = read(table(["id.resp_h", "ts", "id.orig_h"], [["203.0.113.9", "1700000000.5", "10.0.0.2"]]))
    assert flows == [
        Flow(ts=1700000000.5, uid="", orig_h="10.0.0.2", orig_p=0, resp_h="203.0.113.9", resp_p=0, proto="")
    ]


# --- columns: order, unknown ones, IoT-23, concatenated logs, separators --------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_column_order_is_taken_from_fields(seed: int) -> None:
    flow = a_flow()
    values = fields_of(flow)
    columns = list(STANDARD_FIELDS)
    random.Random(seed).shuffle(columns)
    flows, report = read(table(columns, [[values[column] for column in columns]]))
    assert flows == [flow] and not report.skipped


@pytest.mark.parametrize(
    "garbage",
    [
        "Malicious",
        "-",
        "(empty)",
        "abc\x00\x01\x1b[31m\x7f",
        '{"ts": 0, "id.orig_h": "evil"}',
        "\r",
        "1" * 5000,
        "é" * 2000,
        "x" * (3 * MAX_LINE),  # longer than a line may be: the standard columns before it are still whole
    ],
)
def test_unknown_columns_are_never_read(garbage: str) -> None:
    flow = a_flow()
    values = fields_of(flow)
    columns = ["label", *STANDARD_FIELDS[:5], "community_id", *STANDARD_FIELDS[5:], "detailed-label"]
    row = [garbage, *[values[c] for c in STANDARD_FIELDS[:5]], garbage, *[values[c] for c in STANDARD_FIELDS[5:]]]
    # A garbage column before the standard ones has to stay short; after them it may be anything.
    first = garbage if len(garbage) < MAX_LINE // 4 else "x"
    flows, report = read(table(columns, [[first, *row[1:], garbage]]))
    assert flows == [flow]
    assert report.read == 1 and not report.skipped


@given(label=st.text(st.characters(codec="utf-8", exclude_characters="\t\n"), max_size=200))
@settings(max_examples=100, deadline=None)
def test_whatever_a_label_holds_the_flow_is_the_same(label: str) -> None:
    flow = a_flow()
    values = fields_of(flow)
    columns = [*STANDARD_FIELDS, "label", "detailed-label"]
    flows, report = read(table(columns, [[*values.values(), label, label]]))
    assert flows == [flow] and not report.skipped


def test_iot23_labelled_log_with_columns_joined_by_three_spaces() -> None:
    # IoT-23's conn.log.labeled: the last three columns are joined by three spaces, in #fields and #types too.
    fields = "\t".join(STANDARD_FIELDS) + "\ttunnel_parents   label   detailed-label"
    types = "\t".join(["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval"])
    types += "\tcount" * 2 + "\tstring\tbool\tbool\tcount\tstring" + "\tcount" * 4 + "\tset[string]   string   string"
    scan = a_flow(uid="C1", resp_p=23, conn_state="S0", service="", history="S", duration=None)
    heartbeat = a_flow(uid="C2", resp_p=6667, local_orig=None, local_resp=None)
    benign = a_flow(uid="C3", orig_bytes=None, resp_bytes=None)
    text = (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
        "#open\t2018-05-09-16-36-03\n"
        f"#fields\t{fields}\n#types\t{types}\n"
        + conn_log_line(scan).rstrip("\n")
        + "\t-   Malicious   PartOfAHorizontalPortScan\n"
        + conn_log_line(heartbeat).rstrip("\n")
        + "\t(empty)   Malicious   C&C-HeartBeat\n"
        + conn_log_line(benign).rstrip("\n")
        + "\t-   Benign   -\n"
        + "#close\t2018-05-10-16-36-03\n"
    )
    flows, report = read(text)
    assert flows == [scan, heartbeat, benign]
    assert report.read == 3 and not report.skipped


def test_a_second_fields_header_switches_columns() -> None:
    # Two logs concatenated (`cat conn.*.log`): the second brings its own header, with other columns.
    first, second = a_flow(uid="C1"), a_flow(uid="C2", orig_h="10.0.0.9", resp_p=443, service="ssl")
    values = fields_of(second)
    columns = ["uid", "id.resp_p", "id.orig_h", "ts", "id.resp_h", "service", "label"]
    text = HEADER + conn_log_line(first) + table(columns, [[*(values[c] for c in columns[:-1]), "Benign"]])
    flows, report = read(text)
    assert flows[0] == first
    assert (flows[1].uid, flows[1].orig_h, flows[1].resp_p, flows[1].service) == ("C2", "10.0.0.9", 443, "ssl")
    assert flows[1].proto == "" and flows[1].orig_pkts == 0  # not in the second header: unset
    assert report.read == 2 and not report.skipped


def test_a_comma_separator_is_honoured() -> None:
    flow = a_flow()
    values = fields_of(flow)
    flows, report = read(table(list(STANDARD_FIELDS), [values.values()], separator=","))
    assert flows == [flow] and not report.skipped


def test_an_unreadable_separator_is_skipped_and_the_tab_kept() -> None:
    text = "#separator \\\n" + "#separator \\x\n" + HEADER.split("\n", 1)[1] + conn_log_line(a_flow())
    flows, report = read(text)
    assert flows == [a_flow()]
    assert report.skipped == {"#separator is not readable / #separator が読めません": 2}
    assert [problem.line for problem in report.examples] == [1, 2]


# --- missing headers -----------------------------------------------------------------------------------------------


def test_tsv_without_fields_is_an_input_error_at_its_line() -> None:
    text = "\n\n" + conn_log_line(a_flow())
    with pytest.raises(InputError) as raised:
        read(text)
    assert str(raised.value).startswith(f"{NAME}:3: ")
    assert "#fields" in str(raised.value)


def test_fields_without_the_addresses_is_an_input_error() -> None:
    with pytest.raises(InputError) as raised:
        read("#separator \\x09\n#fields\tts\tuid\tid.orig_p\n1\tC\t5\n")
    assert str(raised.value).startswith(f"{NAME}:2: ")
    assert "id.orig_h" in str(raised.value) and "id.resp_h" in str(raised.value)


# --- wrong types: skipped with a reason naming the column, the other lines read -----------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("id.orig_p", "abc"),
        ("id.resp_p", "70000"),
        ("id.resp_p", "-1"),
        ("id.orig_p", "80.5"),
        ("orig_pkts", "-3"),
        ("orig_bytes", str(2**70)),
        ("resp_ip_bytes", "9" * 5000),  # longer than int() takes
        ("missed_bytes", "1e3"),
        ("ts", "nan"),
        ("ts", "inf"),
        ("ts", "-1"),
        ("ts", "yesterday"),
        ("ts", "1e400"),
        ("ts", "2023-13-45T99:00:00Z"),
        ("duration", "-3"),
        ("duration", "nan"),
        ("duration", "long"),
        ("local_orig", "yes"),
        ("local_resp", "0"),
        ("id.orig_h", "x" * 65),
        ("id.resp_h", "y" * 1000),
    ],
)
def test_a_wrong_value_skips_its_line_naming_the_column(column: str, value: str) -> None:
    good = fields_of(a_flow())
    bad = dict(good, **{column: value})
    text = HEADER + "\t".join(good.values()) + "\n" + "\t".join(bad.values()) + "\n" + "\t".join(good.values()) + "\n"
    flows, report = read(text)
    assert flows == [a_flow(), a_flow()]
    assert report.read == 2 and report.skipped_total == 1
    (reason,) = report.skipped
    assert reason.startswith(column + " "), reason
    assert value not in reason  # the value is in the example, not the counted reason
    (example,) = report.examples
    assert (example.file, example.line) == (NAME, 10)
    assert example.message.startswith(reason)


@pytest.mark.parametrize("column", ["ts", "id.orig_h", "id.resp_h"])
@pytest.mark.parametrize("unset", ["-", "(empty)"])
def test_a_line_without_a_required_field_is_skipped(column: str, unset: str) -> None:
    bad = dict(fields_of(a_flow()), **{column: unset})
    flows, report = read(HEADER + "\t".join(bad.values()) + "\n")
    assert flows == []
    assert report.skipped == {f"{column} is missing / {column} がありません": 1}


def test_a_bad_value_is_shown_escaped() -> None:
    # An attacker's escape sequence must not reach an analyst's terminal as is.
    bad = dict(fields_of(a_flow()), **{"id.orig_p": "\x1b[2J\x1b[31mpwned"})
    _, report = read(HEADER + "\t".join(bad.values()) + "\n")
    message = report.examples[0].message
    assert "\x1b" not in message and "\\x1b[2J" in message


def test_a_flood_of_bad_lines_keeps_memory_bounded() -> None:
    good = fields_of(a_flow())
    lines = []
    for number in range(5000):
        column = ("id.orig_p", "ts", "duration", "local_orig", "orig_bytes")[number % 5]
        lines.append("\t".join(dict(good, **{column: f"bad{number}"}).values()) + "\n")
    flows, report = read(HEADER + "".join(lines))
    assert flows == []
    assert report.skipped_total == 5000
    assert len(report.examples) == EXAMPLES_KEPT
    assert len(report.skipped) <= 5  # one reason per column, whatever the values were
    assert "skipped 5000" in report.summary()


# --- truncated, blank, CRLF, over-long lines ---------------------------------------------------------------------


def test_a_truncated_last_line_is_skipped_and_counted() -> None:
    line = conn_log_line(a_flow())
    half = line[: len(line) // 2]
    flows, report = read(HEADER + line + half)  # no newline at the end
    assert flows == [a_flow()]
    assert report.skipped == {"too few columns (truncated line?) / 列が足りません (途中で切れた行?)": 1}
    assert report.examples[0].line == 10


def test_blank_lines_are_neither_read_nor_skipped() -> None:
    line = conn_log_line(a_flow())
    flows, report = read("\n" + HEADER + "\n   \n\t\t\n" + line + "\r\n" + line)
    assert flows == [a_flow(), a_flow()]
    assert report.read == 2 and not report.skipped


def test_crlf_line_endings() -> None:
    text = (HEADER + conn_log_line(a_flow())).replace("\n", "\r\n")
    assert read(text)[0] == [a_flow()]
    # The last column holds text: no "\r" may stick to it.
    columns = [*STANDARD_FIELDS[:-1], "history"]
    values = fields_of(a_flow())
    flows, _ = read(table(columns, [[values[c] for c in columns]]).replace("\n", "\r\n"))
    assert flows[0].history == "ShADadFf"


def test_an_over_long_line_is_skipped() -> None:
    flows, report = read(HEADER + "1" * (MAX_LINE + 1) + "\n" + conn_log_line(a_flow()))
    assert flows == [a_flow()]
    assert report.skipped == {"line too long / 行が長すぎます": 1}


def test_an_over_long_line_cut_inside_the_standard_columns_is_skipped() -> None:
    long_uid = dict(fields_of(a_flow()), uid="C" * (MAX_LINE + 10))
    _, report = read(HEADER + "\t".join(long_uid.values())[: MAX_LINE + 1])
    assert report.skipped == {"line too long / 行が長すぎます": 1}


def test_an_over_long_header_is_skipped() -> None:
    flows, report = read(HEADER + "#fields\t" + "x\t" * MAX_LINE + "\n" + conn_log_line(a_flow()))
    assert flows == [a_flow()]
    assert report.skipped == {"line too long / 行が長すぎます": 1}


def test_a_byte_order_mark_is_ignored() -> None:
    assert read("\ufeff" + HEADER + conn_log_line(a_flow()))[0] == [a_flow()]
    assert read('\ufeff{"ts": 1.5, "id.orig_h": "10.0.0.1", "id.resp_h": "10.0.0.2"}\n')[0][0].ts == 1.5


def test_the_fast_path_and_the_careful_path_agree() -> None:
    # A value the fast path leaves to the careful one (a long ts text, an ISO time) is still taken.
    values = fields_of(a_flow())
    iso = dict(values, ts="2023-11-14T22:13:20.123456Z")
    flows, report = read(HEADER + "\t".join(iso.values()) + "\n")
    assert flows == [a_flow(ts=1700000000.123456)] and not report.skipped


# --- JSON lines ----------------------------------------------------------------------------------------------------


def json_line(**values: Any) -> str:
    record = {"ts": T0, "uid": "CJ1", "id.orig_h": "10.0.0.5", "id.orig_p": 40000, "id.resp_h": "198.51.100.7"}
    record.update({"id.resp_p": 53, "proto": "udp", "conn_state": "SF"})
    record.update(values)
    return json.dumps({key: value for key, value in record.items() if value is not ...}) + "\n"


def test_json_lines_with_every_field() -> None:
    flow = a_flow()
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
        "local_orig": flow.local_orig,
        "local_resp": flow.local_resp,
        "missed_bytes": flow.missed_bytes,
        "history": flow.history,
        "orig_pkts": flow.orig_pkts,
        "orig_ip_bytes": flow.orig_ip_bytes,
        "resp_pkts": flow.resp_pkts,
        "resp_ip_bytes": flow.resp_ip_bytes,
        "tunnel_parents": [],
    }
    flows, report = read(json.dumps(record) + "\n")
    assert flows == [flow] and report.read == 1 and not report.skipped


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1700000000.25, 1700000000.25),
        (1700000000, 1700000000.0),
        ("1700000000.25", 1700000000.25),
        ("2023-11-14T22:13:20.250000Z", 1700000000.25),
        ("2023-11-14T22:13:20.25Z", 1700000000.25),
        ("2023-11-15T07:13:20+09:00", 1700000000.0),
        ("2023-11-14T22:13:20", 1700000000.0),  # no zone: UTC
        ("2023-11-14 22:13:20Z", 1700000000.0),
    ],
)
def test_json_ts_as_epoch_or_iso8601(ts: float | str, expected: float) -> None:
    flows, report = read(json_line(ts=ts))
    assert not report.skipped
    assert flows[0].ts == pytest.approx(expected, abs=1e-6)


def test_json_missing_optional_fields_and_unknown_keys() -> None:
    text = json.dumps(
        {
            "ts": T0,
            "id.orig_h": "10.0.0.5",
            "id.resp_h": "198.51.100.7",
            "label": "Malicious",
            "detailed-label": {"nested": [1, {"deep": [None, True]}], "x": "\x00"},
            "community_id": "1:abc",
            "ip_proto": 6,
            "orig_bytes": None,  # null: unset, like an absent key
            "uid": None,
        }
    )
    flows, report = read(text + "\n")
    assert flows == [Flow(ts=T0, uid="", orig_h="10.0.0.5", orig_p=0, resp_h="198.51.100.7", resp_p=0, proto="")]
    assert not report.skipped


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[1, 2, 3]", "not a JSON object / JSON オブジェクトではありません"),
        ("42", "not a JSON object / JSON オブジェクトではありません"),
        ('"ts"', "not a JSON object / JSON オブジェクトではありません"),
        ("null", "not a JSON object / JSON オブジェクトではありません"),
        ('{"ts": 1, "id.orig_h": "a"', "not JSON / JSON として読めません"),
        ('{"ts": 1,, }', "not JSON / JSON として読めません"),
        ("[" * 30_000 + "]" * 30_000, "not JSON / JSON として読めません"),  # deep nesting: RecursionError
        ('{"label": ' + "[" * 20_000 + "]" * 20_000 + "}", "not JSON / JSON として読めません"),
        ("#fields\tts\tuid", "header line in a JSON log / JSON ログ中のヘッダ行"),
        (json_line(ts=...).strip(), "ts is missing / ts がありません"),
        (json_line(ts=None).strip(), "ts is missing / ts がありません"),
        (json_line(ts=True).strip(), "ts is not a time / ts が時刻ではありません"),
        (json_line(ts=[1]).strip(), "ts is not a time / ts が時刻ではありません"),
        (json_line(ts=10**400).strip(), "ts is not a time / ts が時刻ではありません"),
        ('{"ts": Infinity, "id.orig_h": "a", "id.resp_h": "b"}', "ts is out of range / ts が範囲外です"),
        ('{"ts": NaN, "id.orig_h": "a", "id.resp_h": "b"}', "ts is out of range / ts が範囲外です"),
        (json_line(ts="0001-01-01T00:00:00+14:00").strip(), "ts is out of range / ts が範囲外です"),
        (json_line(duration=10**400).strip(), "duration is not a number / duration が数値ではありません"),
        (json_line(duration=-0.5).strip(), "duration is out of range / duration が範囲外です"),
        (json_line(duration={"s": 1}).strip(), "duration is not a number / duration が数値ではありません"),
        (json_line(**{"id.resp_p": 70000}).strip(), "id.resp_p is not a port / id.resp_p がポート番号ではありません"),
        (json_line(**{"id.resp_p": 53.0}).strip(), "id.resp_p is not a count / id.resp_p が数値ではありません"),
        (json_line(**{"id.resp_p": True}).strip(), "id.resp_p is not a count / id.resp_p が数値ではありません"),
        (json_line(orig_bytes=-1).strip(), "orig_bytes is out of range / orig_bytes が範囲外です"),
        (
            json_line(orig_pkts=2**70).strip(),
            "orig_pkts is not a count / orig_pkts が数値ではありません",
        ),  # orjson reads it as a float
        (json_line(**{"id.orig_h": 10}).strip(), "id.orig_h is not an address / id.orig_h がアドレスではありません"),
        (json_line(**{"id.orig_h": ""}).strip(), "id.orig_h is not an address / id.orig_h がアドレスではありません"),
        (json_line(proto={"$gt": ""}).strip(), "proto is not a string / proto が文字列ではありません"),
        (json_line(uid=["C1"]).strip(), "uid is not a string / uid が文字列ではありません"),
        (json_line(local_orig="maybe").strip(), "local_orig is not a bool / local_orig が真偽値ではありません"),
        (json_line(local_orig=1).strip(), "local_orig is not a bool / local_orig が真偽値ではありません"),
        (json_line(local_resp=[]).strip(), "local_resp is not a bool / local_resp が真偽値ではありません"),
        (json_line(local_resp={"T": 1}).strip(), "local_resp is not a bool / local_resp が真偽値ではありません"),
    ],
)
def test_bad_json_lines_are_skipped_by_reason(line: str, reason: str) -> None:
    flows, report = read(json_line() + line + "\n" + json_line(uid="CJ2"))
    assert [flow.uid for flow in flows] == ["CJ1", "CJ2"]
    assert report.skipped == {reason: 1}
    assert report.examples[0].line == 2


def test_a_json_log_cut_at_its_start_is_still_json() -> None:
    # `tail -c 1M conn.json.log`: the first line is the end of an object.
    cut = json_line()[25:]
    flows, report = read(cut + json_line(uid="CJ2") + json_line(uid="CJ3"))
    assert [flow.uid for flow in flows] == ["CJ2", "CJ3"]
    assert report.skipped_total == 1 and report.examples[0].line == 1


def test_json_strings_for_counts_and_bools_are_taken() -> None:
    flows, _ = read(json_line(**{"id.resp_p": "53", "local_orig": "T", "proto": "UDP"}))
    assert (flows[0].resp_p, flows[0].local_orig, flows[0].proto) == (53, True, "udp")


def test_a_tsv_line_in_a_json_log_is_skipped() -> None:
    flows, report = read(json_line() + conn_log_line(a_flow()))
    assert len(flows) == 1 and report.skipped_total == 1


# --- properties ----------------------------------------------------------------------------------------------------

_TEXT = st.characters(codec="utf-8", exclude_characters="\n")
_NUMBERISH = st.sampled_from(["-", "(empty)", "0", "-1", "65536", "1e3", "nan", "T", "F", "", "1700000000.5", " 7"])
_CELL = st.one_of(st.text(_TEXT, max_size=12), _NUMBERISH, st.integers().map(str))


def _data_lines() -> st.SearchStrategy[list[str]]:
    """Lines that are not headers: free text, or rows of plausible and implausible cells."""
    row = st.lists(_CELL, max_size=len(STANDARD_FIELDS) + 3).map("\t".join)
    line = st.one_of(st.text(_TEXT, max_size=80), row, row.map(lambda text: text + "\r"))
    return st.lists(line.filter(lambda text: not text.startswith("#")), max_size=25)


def _is_data(line: str) -> bool:
    return bool(line.rstrip("\r\n").strip())


@given(lines=_data_lines())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_line_after_a_header_is_a_flow_or_a_counted_skip(lines: list[str]) -> None:
    flows, report = read(HEADER + "".join(line + "\n" for line in lines))
    assert report.read == len(flows)
    assert report.read + report.skipped_total == sum(map(_is_data, lines))
    assert len(report.examples) <= EXAMPLES_KEPT
    for flow in flows:
        assert 0 <= flow.ts < 2**34 and 0 <= flow.orig_p <= 65535 and 0 <= flow.resp_p <= 65535
        assert 0 < len(flow.orig_h) <= 64 and 0 < len(flow.resp_h) <= 64
        assert flow.duration is None or (math.isfinite(flow.duration) and flow.duration >= 0)
        assert min(flow.orig_pkts, flow.resp_pkts, flow.orig_ip_bytes, flow.resp_ip_bytes, flow.missed_bytes) >= 0


@given(
    lines=st.lists(st.one_of(st.text(_TEXT, max_size=60), st.just("#fields\tts\tid.orig_h\tid.resp_h")), max_size=15)
)
@settings(max_examples=100, deadline=None)
def test_arbitrary_text_raises_nothing_but_a_missing_fields_error(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    try:
        flows, report = read(text)
    except InputError as error:
        assert "#fields" in str(error)
        return
    assert report.read == len(flows)


_JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_JSON_VALUE = (
    _JSON_LEAF | st.lists(_JSON_LEAF, max_size=2) | st.dictionaries(st.text(max_size=3), _JSON_LEAF, max_size=2)
)
_JSON_RECORD = st.dictionaries(st.sampled_from([*STANDARD_FIELDS, "label"]), _JSON_VALUE, max_size=8)
_JSON_PLAUSIBLE = st.fixed_dictionaries(
    {"ts": st.floats(0, 2**34) | st.text(max_size=30), "id.orig_h": _JSON_VALUE, "id.resp_h": _JSON_VALUE},
    optional={"id.resp_p": _JSON_VALUE, "duration": _JSON_VALUE, "local_orig": _JSON_VALUE, "proto": _JSON_VALUE},
)


@given(records=st.lists(st.one_of(_JSON_RECORD, _JSON_PLAUSIBLE, _JSON_VALUE), min_size=1, max_size=6))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_line_is_a_flow_or_a_counted_skip(records: list[Any]) -> None:
    first = json_line()
    flows, report = read(first + "".join(json.dumps(record) + "\n" for record in records))
    assert report.read + report.skipped_total == 1 + len(records)
    assert report.read == len(flows)


_LABEL = st.text(
    st.characters(codec="utf-8", exclude_characters="\t\n\r", exclude_categories=["Cc", "Zs", "Zl", "Zp"]),
    min_size=1,
    max_size=12,
).filter(lambda text: text not in ("-", "(empty)"))
_COUNT = st.integers(0, 2**63 - 1)
#: A uid as Zeek and other tools write them (anything else is refused: it could be a spreadsheet formula).
_UID_TEXT = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True).filter(lambda text: text != "-")


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    """Any flow a conn.log can hold (times to the microsecond, as the writer writes them)."""
    address = st.ip_addresses().map(str)
    return Flow(
        ts=draw(st.integers(0, (2**34 - 1) * 10**6)) / 1e6,
        uid=draw(st.just("") | _UID_TEXT),
        orig_h=draw(address),
        orig_p=draw(st.integers(0, 65535)),
        resp_h=draw(address),
        resp_p=draw(st.integers(0, 65535)),
        proto=draw(st.sampled_from(["tcp", "udp", "icmp", ""])),
        service=draw(st.just("") | _LABEL.map(str.lower).filter(lambda text: text not in ("-", "(empty)"))),
        duration=draw(st.none() | st.integers(0, 2**34 * 10**6 - 1).map(lambda micro: micro / 1e6)),
        orig_bytes=draw(st.none() | _COUNT),
        resp_bytes=draw(st.none() | _COUNT),
        conn_state=draw(st.sampled_from(["S0", "SF", "REJ", "RSTOS0", "OTH", ""])),
        local_orig=draw(st.none() | st.booleans()),
        local_resp=draw(st.none() | st.booleans()),
        missed_bytes=draw(_COUNT),
        history=draw(st.just("") | _LABEL),
        orig_pkts=draw(_COUNT),
        orig_ip_bytes=draw(_COUNT),
        resp_pkts=draw(_COUNT),
        resp_ip_bytes=draw(_COUNT),
    )


@given(generated=st.lists(flows(), min_size=1, max_size=3))
@settings(max_examples=40, deadline=None)
def test_generated_flows_round_trip(generated: list[Flow]) -> None:
    read_back, report = read(conn_log_header(generated[0].ts) + "".join(map(conn_log_line, generated)))
    assert read_back == generated
    assert report.read == len(generated) and not report.skipped


@pytest.mark.parametrize(
    "uid",
    ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "C1<script>", "C\x1b[31m", "C 1"],
)
def test_a_uid_that_could_inject_into_a_spreadsheet_or_a_terminal_is_refused(uid: str) -> None:
    values = dict(fields_of(a_flow()), uid=uid)

    flows, report = read(HEADER + "\t".join(values.values()) + "\n" + conn_log_line(a_flow()))

    assert flows == [a_flow()]
    assert report.skipped == {"uid has characters a uid never has / uid に使えない文字があります": 1}


@pytest.mark.parametrize("address", ["=1+1", "evil.example", "10.0.0.1<b>", "999.1.1.1", "fe80::1%eth0;rm"])
def test_an_address_that_is_not_an_ip_address_is_refused(address: str) -> None:
    values = dict(fields_of(a_flow()), **{"id.orig_h": address})

    flows, report = read(HEADER + "\t".join(values.values()) + "\n")

    assert flows == [] and report.skipped_total == 1
    assert "id.orig_h is not an address" in next(iter(report.skipped))


def test_an_ipv6_address_with_a_zone_is_taken() -> None:
    flows, report = read(HEADER + conn_log_line(a_flow(orig_h="fe80::1%eth0")))

    assert [flow.orig_h for flow in flows] == ["fe80::1%eth0"] and not report.skipped


_JSON_ANY = st.none() | st.booleans() | st.integers(-5, 2**64) | st.floats(allow_nan=True) | st.text(max_size=6)


@given(
    record=st.fixed_dictionaries(
        {},
        optional={
            "ts": st.floats(-1, 2**35) | st.integers(-1, 2**35) | _JSON_ANY,
            "uid": st.sampled_from(["C1", "", "=1+1"]) | _JSON_ANY,
            "id.orig_h": st.sampled_from(["10.0.0.1", "2001:db8::1", "x"]) | _JSON_ANY,
            "id.resp_h": st.sampled_from(["203.0.113.9", "fe80::1%eth0"]) | _JSON_ANY,
            "id.orig_p": st.integers(-1, 70000) | _JSON_ANY,
            "id.resp_p": st.integers(-1, 70000) | _JSON_ANY,
            "proto": st.sampled_from(["tcp", "UDP"]) | _JSON_ANY,
            "duration": st.floats(-1, 2**35) | _JSON_ANY,
            "orig_bytes": st.integers(-1, 2**64) | _JSON_ANY,
            "local_orig": _JSON_ANY,
            "conn_state": st.sampled_from(["S0", "SF"]) | _JSON_ANY,
            "orig_pkts": st.integers(-1, 2**64) | _JSON_ANY,
        },
    )
)
def test_the_json_fast_path_takes_only_what_the_careful_path_takes_and_reads_it_the_same(
    record: dict[str, object],
) -> None:
    from machimori.detection.zeek import _BadLine, _flow, _json_fast

    fast = _json_fast(record)
    try:
        careful = _flow({field: value for field, value in record.items() if value is not None})
    except _BadLine:
        careful = None
    if fast is not None:
        assert fast == careful
