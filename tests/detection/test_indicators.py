"""Threat indicators: plain lists and STIX 2.1 bundles read, flows matched, findings exported and read back."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stix2  # type: ignore[import-untyped]

from machimori.detection.flows import Flow
from machimori.detection.indicators import (
    MAX_FILE_BYTES,
    IndicatorSet,
    TooBroad,
    load_indicators,
    normalise,
)
from machimori.detection.reading import ReadReport
from machimori.detection.stix import FoundIndicator, export_stix
from machimori.diagnostics import InputError

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def at_now() -> float:
    return NOW.timestamp()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def indicator(pattern: str, number: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-{number:012d}",
        "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00Z",
        **extra,
    }


def bundle(tmp_path: Path, *objects: Any, name: str = "feed.json") -> Path:
    document = {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": list(objects)}
    return write(tmp_path, name, json.dumps(document))


def load(path: Path) -> tuple[IndicatorSet, ReadReport]:
    report = ReadReport()
    return load_indicators(path, IndicatorSet(clock=at_now), report=report), report


def values(indicators: IndicatorSet) -> set[str]:
    return {item.value for item in indicators}


def flow(orig: str, resp: str, ts: float | None = None) -> Flow:
    return Flow(
        ts=NOW.timestamp() if ts is None else ts,
        uid="C1",
        orig_h=orig,
        orig_p=40000,
        resp_h=resp,
        resp_p=443,
        proto="tcp",
    )


# --- plain lists -------------------------------------------------------------------------------------------


def test_a_plain_list_takes_addresses_networks_and_domains(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c2.txt",
        "# C&C servers\n\n203.0.113.9\n2001:db8::5   # inline comment\n198.51.100.0/24\nEvil.Example.\n*.wild.example\n",
    )
    indicators, report = load(path)
    assert values(indicators) == {"203.0.113.9", "2001:db8::5", "198.51.100.0/24", "evil.example", "wild.example"}
    assert len(indicators) == report.read == 5
    assert indicators.match_address("203.0.113.9") is not None
    assert indicators.match_address("198.51.100.77") is not None
    assert indicators.match_address("198.51.101.1") is None
    assert indicators.match_domain("a.b.wild.example") is not None
    hit = indicators.match_address("2001:db8::5")
    assert hit is not None and hit.kind == "ipv6-addr" and hit.source == str(path)


def test_duplicates_are_kept_once_and_normalised_forms_coincide(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dups.txt",
        "203.0.113.9\n203.0.113.9\n::ffff:203.0.113.9\n203.0.113.9/32\nEVIL.example\nevil.example.\n2001:DB8::1\n2001:db8:0::1\n",
    )
    indicators, _ = load(path)
    assert sorted(values(indicators)) == ["2001:db8::1", "203.0.113.9", "evil.example"]
    assert len(indicators) == 3


def test_internationalised_domains_are_held_in_their_idna_form(tmp_path: Path) -> None:
    indicators, _ = load(write(tmp_path, "idn.txt", "悪い例.テスト\n"))
    assert values(indicators) == {"xn--n8j845gwxl.xn--zckzah"} == {"悪い例.テスト".encode("idna").decode()}
    assert indicators.match_domain("C2.xn--n8j845gwxl.xn--zckzah.") is not None
    assert indicators.match_domain("c2.悪い例.テスト") is not None


def test_every_bad_line_is_reported_with_its_place_in_both_languages(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bad.txt", "203.0.113.9\n203.0.113.9:443\nhttp://evil.example/x\n\n10.0.0.1/8\nlocalhost\n1.2.3.999\n"
    )
    with pytest.raises(InputError) as caught:
        load(path)
    lines = [problem.line for problem in caught.value.problems]
    assert lines == [2, 3, 5, 6, 7]
    text = str(caught.value)
    assert f"{path}:2: " in text and "/ not an address, network or domain" in text
    assert "host bits set" in text and "ネットワーク" in text


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "128.0.0.0/1", "::ffff:0.0.0.0/96", "2000::/3"])
def test_networks_that_would_mark_everything_are_refused(tmp_path: Path, network: str) -> None:
    with pytest.raises(InputError, match="too broad"):
        load(write(tmp_path, "all.txt", f"203.0.113.9\n{network}\n"))
    with pytest.raises(TooBroad):
        IndicatorSet().add(network)


def test_ipv4_mapped_networks_become_ipv4_networks() -> None:
    assert normalise("::ffff:198.51.100.0/120") == ("ipv4-addr", "198.51.100.0/24")
    assert normalise("::ffff:198.51.100.7") == ("ipv4-addr", "198.51.100.7")


def test_binary_non_utf8_missing_and_oversized_files_are_clear_errors(tmp_path: Path) -> None:
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x7fELF\x00\x00\x01")
    with pytest.raises(InputError, match="binary"):
        load(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"203.0.113.9\nd\xe9j\xe0.example\n")
    with pytest.raises(InputError, match=r"latin.txt:2: .*not UTF-8"):
        load(latin)
    with pytest.raises(InputError, match="file not found"):
        load(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="directory"):
        load(tmp_path)
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:  # sparse: the size is refused before anything is read
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InputError, match="file too large"):
        load(huge)


def test_a_flood_of_bad_lines_is_summarised(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load(write(tmp_path, "junk.txt", "not a domain!\n" * 1000))
    assert len(caught.value.problems) == 101
    assert "900 more bad lines" in str(caught.value)


def test_the_number_of_indicators_is_bounded(tmp_path: Path) -> None:
    path = write(tmp_path, "many.txt", "".join(f"198.51.100.{n}\n" for n in range(10)))
    with pytest.raises(InputError, match=r"many.txt:6: .*too many indicators"):
        load_indicators(path, IndicatorSet(max_indicators=5))


# --- matching ----------------------------------------------------------------------------------------------


def test_the_most_specific_match_wins_and_mapped_or_scoped_addresses_match() -> None:
    indicators = IndicatorSet()
    wide = indicators.add("198.51.0.0/16", source="wide")
    narrow = indicators.add("198.51.100.0/24", source="narrow")
    exact = indicators.add("198.51.100.7", source="exact")
    v6 = indicators.add("2001:db8:abcd::/48", source="v6")
    assert indicators.match_address("198.51.100.7") is exact
    assert indicators.match_address("198.51.100.8") is narrow
    assert indicators.match_address("198.51.7.1") is wide
    assert indicators.match_address("::ffff:198.51.100.7") is exact
    assert indicators.match_address("2001:db8:abcd:1::9%eth0") is v6
    for nothing in ("", "-", "198.51", "not-an-address", "2001:db8:abce::1", "10.0.0.1"):
        assert indicators.match_address(nothing) is None


def test_flows_match_on_their_peer_whichever_side_opened_them() -> None:
    indicators = IndicatorSet()
    indicators.add("203.0.113.9")
    assert indicators.match_flow(flow("192.168.1.20", "203.0.113.9")) is not None
    assert indicators.match_flow(flow("203.0.113.9", "192.168.1.20")) is not None
    assert indicators.match_flow(flow("192.168.1.20", "203.0.113.10")) is None
    assert indicators.match_flow(flow("192.168.1.20", "::ffff:203.0.113.9")) is not None


def test_an_expired_indicator_stops_matching_and_a_broader_valid_one_takes_over() -> None:
    indicators = IndicatorSet(clock=at_now)
    until = NOW + timedelta(days=1)
    indicators.add("203.0.113.9", valid_until=until, source="short")
    indicators.add("203.0.113.0/24", source="forever")
    short = indicators.match_address("203.0.113.9")
    assert short is not None and short.source == "short"
    later = (until + timedelta(seconds=1)).timestamp()
    broad = indicators.match_address("203.0.113.9", at=later)
    assert broad is not None and broad.source == "forever"
    assert indicators.match_flow(flow("192.168.1.2", "203.0.113.9", ts=later)) == broad


def test_the_longer_lived_of_two_duplicates_is_kept() -> None:
    indicators = IndicatorSet()
    indicators.add("203.0.113.9", valid_until=NOW, source="a")
    kept = indicators.add("203.0.113.9", valid_until=NOW + timedelta(days=9), source="b")
    assert indicators.add("203.0.113.9", valid_until=NOW + timedelta(days=1), source="c") is kept
    assert len(indicators) == 1 and kept.source == "b"
    assert indicators.add("203.0.113.9", source="forever").source == "forever"


def test_the_match_cache_stays_bounded_and_is_refreshed_when_indicators_change() -> None:
    indicators = IndicatorSet(cache_size=64)
    for n in range(1000):
        assert indicators.match_address(f"10.0.{n // 256}.{n % 256}") is None
    assert len(indicators._cache) <= 64
    assert indicators.match_address("10.0.0.5") is None
    indicators.add("10.0.0.0/24")
    assert indicators.match_address("10.0.0.5") is not None


def test_matching_against_ten_thousand_indicators_gives_the_right_answers() -> None:
    indicators = IndicatorSet()
    exact = [str(ipaddress.IPv4Address(0xCB007100 + n)) for n in range(256)]  # 203.0.113.0 - 203.0.113.255
    exact += [f"100.{64 + n // 65536 % 64}.{n // 256 % 256}.{n % 256}" for n in range(8_744)]
    networks = [f"45.{n // 256}.{n % 256}.0/24" for n in range(1_000)]
    for value in exact + networks:
        indicators.add(value)
    assert len(indicators) == 10_000
    for value in exact[::97]:
        hit = indicators.match_address(value)
        assert hit is not None and hit.value == value
    for n in range(0, 1_000, 37):
        hit = indicators.match_address(f"45.{n // 256}.{n % 256}.200")
        assert hit is not None and hit.value == f"45.{n // 256}.{n % 256}.0/24"
    for miss in ("45.3.232.1", "100.64.34.40", "203.0.114.1", "2001:db8::1", "8.8.8.8"):
        assert indicators.match_address(miss) is None


# --- domains and what they resolve to ------------------------------------------------------------------------


def test_a_domain_matches_itself_and_its_subdomains_only() -> None:
    indicators = IndicatorSet()
    indicators.add("evil.example", source="feed")
    assert indicators.match_domain("evil.example") is not None
    assert indicators.match_domain("A.B.EVIL.EXAMPLE.") is not None
    for other in ("notevil.example", "example", "evil.example.org", "", "..", "a" * 300):
        assert indicators.match_domain(other) is None


def test_addresses_a_c2_domain_resolves_to_match_from_then_on() -> None:
    indicators = IndicatorSet()
    indicators.add("evil.example", source="feed", labels=["c2"])
    assert indicators.match_address("93.184.216.23") is None
    indicators.learn_resolution(
        "cdn.Evil.Example.", ["93.184.216.23", "2001:4860::23", "10.0.0.1", "127.0.0.1", "0.0.0.0", "224.0.0.1", "junk"]
    )
    hit = indicators.match_address("93.184.216.23")
    assert hit is not None and hit.resolved_from == "evil.example" and hit.source == "feed" and hit.labels == ("c2",)
    assert "evil.example" in hit.name
    assert indicators.match_address("2001:4860::23") is not None
    for sinkhole in ("10.0.0.1", "127.0.0.1", "0.0.0.0", "224.0.0.1"):
        assert indicators.match_address(sinkhole) is None
    assert indicators.learned == 2 and len(indicators) == 1
    indicators.learn_resolution("benign.example", ["93.184.216.99"])
    assert indicators.match_address("93.184.216.99") is None


def test_learned_addresses_are_bounded_oldest_forgotten_first() -> None:
    indicators = IndicatorSet(max_learned=3)
    indicators.add("evil.example")
    for n in range(1, 6):
        indicators.learn_resolution("evil.example", [f"93.184.216.{n}"])
    assert indicators.learned == 3
    assert indicators.match_address("93.184.216.2") is None
    assert indicators.match_address("93.184.216.5") is not None


def test_an_expired_domain_neither_matches_nor_teaches_addresses() -> None:
    indicators = IndicatorSet(clock=at_now)
    indicators.add("old.example", valid_until=NOW - timedelta(seconds=1))
    assert indicators.match_domain("old.example") is None
    indicators.learn_resolution("old.example", ["198.51.100.1"])
    assert indicators.learned == 0


# --- STIX 2.1 bundles -----------------------------------------------------------------------------------------


def test_a_bundle_gives_every_simple_pattern_form(tmp_path: Path) -> None:
    path = bundle(
        tmp_path,
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": "identity--00000000-0000-4000-8000-000000000009",
            "created": "2025-01-01T00:00:00Z",
            "modified": "2025-01-01T00:00:00Z",
            "name": "ISAC",
        },
        indicator(
            "[ipv4-addr:value = '203.0.113.9']",
            1,
            name="C2",
            labels=["c2"],
            indicator_types=["malicious-activity"],
            confidence=85,
        ),
        indicator("[ipv6-addr:value = '2001:db8::9']", 2),
        indicator("[domain-name:value = 'Evil.Example']", 3),
        indicator("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", 4),
        indicator("[ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.2']", 5),
        indicator("[ipv4-addr:value = '192.0.2.3'] OR ([domain-name:value = 'bad.example'])", 6),
        indicator("[network-traffic:dst_ref.value = '192.0.2.4']", 7),
        indicator("[ipv4-addr:value IN ('192.0.2.5', '192.0.2.6')]", 8),
        indicator(
            "[ipv4-addr:value = '192.0.2.7' OR file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
            9,
        ),
    )
    indicators, report = load(path)
    assert values(indicators) == {
        "203.0.113.9", "2001:db8::9", "evil.example", "198.51.100.0/24", "192.0.2.1", "192.0.2.2",
        "192.0.2.3", "bad.example", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7",
    }  # fmt: skip
    assert report.skipped_total == 0
    hit = indicators.match_address("203.0.113.9")
    assert hit is not None
    assert hit.source == "indicator--00000000-0000-4000-8000-000000000001"
    assert hit.name == "C2" and hit.labels == ("c2", "malicious-activity") and hit.confidence == 85


def test_patterns_that_cannot_be_matched_on_flows_are_skipped_and_counted(tmp_path: Path) -> None:
    sha = "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"
    path = bundle(
        tmp_path,
        indicator(f"[file:hashes.'SHA-256' = '{sha}']", 1),
        indicator("[ipv4-addr:value = '192.0.2.1' AND network-traffic:dst_port = 443]", 2),
        indicator("[ipv4-addr:value = '192.0.2.1'] AND [ipv4-addr:value = '192.0.2.2']", 3),
        indicator("[ipv4-addr:value = '192.0.2.1'] REPEATS 5 TIMES", 4),
        indicator("[ipv4-addr:value != '192.0.2.1']", 5),
        indicator("[ipv4-addr:value NOT = '192.0.2.1']", 6),
        indicator("[domain-name:value LIKE '%.evil.example']", 7),
        indicator("[network-traffic:dst_port = 6667]", 8),
        indicator('alert tcp any any -> 192.0.2.1 any (msg:"c2";)', 9, pattern_type="snort"),
        indicator("[ipv4-addr:value = '192.0.2.1'", 10),
        indicator("[domain-name:value = '192.0.2.1']", 11),
        indicator("[ipv4-addr:value = 'evil.example']", 12),
        indicator("[ipv4-addr:value = '192.0.2.9']", 13),
    )
    indicators, report = load(path)
    assert values(indicators) == {"192.0.2.9"}
    assert report.read == 1 and report.skipped_total == 12
    reasons = " ".join(report.skipped)
    assert "pattern not usable" in reasons and "not stix" in reasons and "invalid STIX" in reasons
    assert "not an address, network or domain" in reasons
    assert any("indicator--00000000-0000-4000-8000-000000000001" in str(p) for p in report.examples)


def test_injection_looking_values_stay_one_literal_and_match_nothing(tmp_path: Path) -> None:
    escaped = "[domain-name:value = 'evil.example\\'] OR [ipv4-addr:value ISSUBSET \\'0.0.0.0/0']"
    path = bundle(
        tmp_path,
        indicator(escaped, 1),
        indicator("[domain-name:value = 'a.example'] OR [ipv4-addr:value ISSUBSET '0.0.0.0/0'", 2),  # unbalanced
        indicator("[domain-name:value = 'x.example\\\\']", 3),
        indicator("[ipv4-addr:value = '192.0.2.1\\n']", 4),
        indicator("[domain-name:value = 'evil.example\u202e']", 5),
    )
    indicators, report = load(path)
    assert len(indicators) == 0 and report.skipped_total == 5
    assert indicators.match_address("8.8.8.8") is None
    assert indicators.match_domain("evil.example") is None


def test_a_bundle_naming_everything_is_refused(tmp_path: Path) -> None:
    path = bundle(
        tmp_path,
        indicator("[ipv4-addr:value = '192.0.2.1']", 1),
        indicator("[ipv4-addr:value ISSUBSET '0.0.0.0/0']", 2),
    )
    with pytest.raises(InputError, match=r"feed.json:indicator--00000000-0000-4000-8000-000000000002: .*too broad"):
        load(path)


def test_revoked_and_expired_indicators_are_skipped(tmp_path: Path) -> None:
    path = bundle(
        tmp_path,
        indicator("[ipv4-addr:value = '192.0.2.1']", 1, revoked=True),
        indicator("[ipv4-addr:value = '192.0.2.2']", 2, valid_until="2025-02-01T00:00:00Z"),
        indicator("[ipv4-addr:value = '192.0.2.3']", 3, valid_until="2025-12-01T00:00:00Z"),
    )
    indicators, report = load(path)
    assert values(indicators) == {"192.0.2.3"}
    assert report.skipped == {"取り消し済み / revoked": 1, "有効期限切れ / expired (valid_until passed)": 1}
    hit = indicators.match_address("192.0.2.3")
    assert hit is not None and hit.valid_until == datetime(2025, 12, 1, tzinfo=UTC)
    assert indicators.match_address("192.0.2.3", at=datetime(2025, 12, 2, tzinfo=UTC).timestamp()) is None


def test_bare_observables_are_taken_but_those_describing_a_sighting_are_not(tmp_path: Path) -> None:
    bare = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--00000000-0000-4000-8000-000000000001",
        "value": "192.0.2.50",
    }
    domain = {
        "type": "domain-name",
        "id": "domain-name--00000000-0000-4000-8000-000000000002",
        "value": "Bare.Example.",
    }
    victim = {"type": "ipv4-addr", "id": "ipv4-addr--00000000-0000-4000-8000-000000000003", "value": "192.0.2.60"}
    wrong = {"type": "ipv4-addr", "id": "ipv4-addr--00000000-0000-4000-8000-000000000004", "value": "not.an.address"}
    observed = {
        "type": "observed-data", "spec_version": "2.1", "id": "observed-data--00000000-0000-4000-8000-000000000005",
        "created": "2025-01-01T00:00:00Z", "modified": "2025-01-01T00:00:00Z", "first_observed": "2025-01-01T00:00:00Z",
        "last_observed": "2025-01-01T00:00:00Z", "number_observed": 1, "object_refs": [victim["id"]],
    }  # fmt: skip
    indicators, report = load(bundle(tmp_path, bare, domain, victim, wrong, observed))
    assert values(indicators) == {"192.0.2.50", "bare.example"}
    assert report.skipped_total == 1


def test_a_stix_2_0_indicator_is_read_too(tmp_path: Path) -> None:
    old = {
        "type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001",
        "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
        "labels": ["malicious-activity"], "pattern": "[ipv4-addr:value = '192.0.2.1']", "valid_from": "2025-01-01T00:00:00Z",
    }  # fmt: skip
    indicators, _ = load(bundle(tmp_path, old))
    assert values(indicators) == {"192.0.2.1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "bundle", "objects": [', r"broken.json:1:\d+: .*not valid JSON"),
        ('{"type": "bundle",\n "objects": [}', r"broken.json:2:\d+: .*not valid JSON"),
        ('{"type": "indicator"}', "not a STIX 2.1 bundle"),
        ("[1, 2, 3]", "not a STIX 2.1 bundle"),
        ('{"type": "bundle", "objects": {"a": 1}}', '"objects" is not a list'),
        ('{"type": "bundle", "objects": []}' + "[" * 100_000, "not valid JSON"),
        ('{"type": "bundle", "objects": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested too deeply"),
        ('{"type": "bundle", "objects": [{"type": "x-deep", "v": ' + "[" * 40 + "]" * 40 + "}]}", "nested too deeply"),
        ('{"type": "bundle", "objects": [{"type": "x-big", "n": ' + "9" * 5000 + "}]}", "not valid JSON"),
    ],
)
def test_broken_or_hostile_json_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load(write(tmp_path, "broken.json", text))


def test_objects_that_are_not_stix_are_skipped_not_fatal(tmp_path: Path) -> None:
    path = bundle(
        tmp_path,
        42,
        "indicator",
        {"no": "type"},
        {"type": "indicator", "id": {"x": "y" * 10_000}, "pattern": "[ipv4-addr:value = '192.0.2.1']"},
        {"type": "indicator", "spec_version": "9.9", "id": "indicator--00000000-0000-4000-8000-000000000001"},
        indicator("[ipv4-addr:value = '192.0.2.2']", 2),
    )
    indicators, report = load(path)
    assert values(indicators) == {"192.0.2.2"}
    assert report.skipped_total == 5
    assert all(len(str(problem)) < 300 for problem in report.examples)


def test_loading_adds_to_an_existing_set(tmp_path: Path) -> None:
    indicators = IndicatorSet()
    load_indicators(write(tmp_path, "a.txt", "192.0.2.1\n"), into=indicators)
    same = load_indicators(bundle(tmp_path, indicator("[ipv4-addr:value = '192.0.2.2']")), into=indicators)
    assert same is indicators and values(indicators) == {"192.0.2.1", "192.0.2.2"}


# --- exporting what the city found --------------------------------------------------------------------------------


def found(value: str = "203.0.113.9", kind: str = "ipv4-addr", role: str = "c2", **extra: Any) -> FoundIndicator:
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    return FoundIndicator(
        value, kind, role, first, first + timedelta(hours=2), **{"count": 40, "confidence": 80, **extra}
    )


def test_an_export_is_valid_stix_with_identity_indicators_and_sightings() -> None:
    text = export_stix(
        [
            found(description_ja="IoT カメラ 3 台が接続", description_en="3 IoT cameras connected"),
            found("Scan.Example.", "domain-name", "scanner"),
        ],
        identity_name="○○市 / Example City",
    )
    parsed = stix2.parse(text, allow_custom=False)
    by_type: dict[str, list[Any]] = {}
    for item in parsed.objects:
        by_type.setdefault(item.type, []).append(item)
    assert {key: len(items) for key, items in by_type.items()} == {
        "identity": 1, "indicator": 2, "ipv4-addr": 1, "domain-name": 1, "observed-data": 2, "sighting": 2,
    }  # fmt: skip
    identity = by_type["identity"][0]
    assert identity.identity_class == "organization" and identity.name == "○○市 / Example City"
    c2 = by_type["indicator"][0]
    assert c2.pattern == "[ipv4-addr:value = '203.0.113.9']" and c2.pattern_type == "stix"
    assert c2.indicator_types == ["malicious-activity"] and c2.labels == ["c2"] and c2.confidence == 80
    assert c2.created_by_ref == identity.id and c2.valid_from == found().first_seen
    assert "C&C サーバの疑い" in c2.name and "Suspected C&C server" in c2.name
    assert c2.description == "IoT カメラ 3 台が接続\n\n3 IoT cameras connected"
    assert by_type["indicator"][1].pattern == "[domain-name:value = 'scan.example']"
    sighting = by_type["sighting"][0]
    assert sighting.sighting_of_ref == c2.id and sighting.count == 40 and sighting.where_sighted_refs == [identity.id]
    assert by_type["observed-data"][0].number_observed == 40
    assert "IoT カメラ" in text  # people can read the export as written


def test_an_export_reads_back_as_the_same_indicators(tmp_path: Path) -> None:
    findings = [
        found(),
        found("2001:db8::c2", "ipv6-addr"),
        found("evil.example", "domain-name"),
        found("198.51.100.0/24", "ipv4-addr", "scanner"),
    ]
    path = write(tmp_path, "city.json", export_stix(findings, identity_name="Example City"))
    indicators = load_indicators(path)
    assert values(indicators) == {"203.0.113.9", "2001:db8::c2", "evil.example", "198.51.100.0/24"}
    hit = indicators.match_address("198.51.100.200")
    assert hit is not None and "scanner" in hit.labels and hit.confidence == 80
    assert hit.valid_until == findings[3].last_seen + timedelta(days=30)


def test_the_same_finding_keeps_its_ids_across_exports() -> None:
    first = json.loads(export_stix([found()], identity_name="Example City"))
    again = json.loads(export_stix([found()], identity_name="Example City"))
    assert [item["id"] for item in first["objects"]] == [item["id"] for item in again["objects"]]
    ids = [item["id"].split("--")[1] for item in first["objects"]]
    assert len(set(ids)) == len(ids)


def test_exports_without_sightings_or_end_of_validity() -> None:
    bundle_ = json.loads(export_stix([found()], identity_name="Example City", sightings=False, valid_for=None))
    assert [item["type"] for item in bundle_["objects"]] == ["identity", "indicator"]
    assert "valid_until" not in bundle_["objects"][1]


@pytest.mark.parametrize(
    "bad",
    [
        {"value": "203.0.113.9'] OR [ipv4-addr:value ISSUBSET '0.0.0.0/0"},
        {"value": "0.0.0.0/0"},
        {"value": "evil.example"},  # kind says ipv4-addr
        {"first_seen": datetime(2025, 1, 2), "last_seen": datetime(2025, 1, 3)},
        {"first_seen": NOW, "last_seen": NOW - timedelta(seconds=1)},
        {"confidence": 101},
        {"count": 0},
        {"role": ""},
    ],
)
def test_findings_that_would_make_a_wrong_indicator_are_refused(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "value": "203.0.113.9",
        "kind": "ipv4-addr",
        "role": "c2",
        "first_seen": NOW,
        "last_seen": NOW,
    }
    with pytest.raises(ValueError):
        FoundIndicator(**{**fields, **bad})


def test_huge_counts_are_capped_to_what_stix_allows() -> None:
    text = export_stix([found(count=10**12)], identity_name="Example City")
    sighting = next(item for item in json.loads(text)["objects"] if item["type"] == "sighting")
    assert sighting["count"] == 999_999_999
