"""STIX 2.1 for indicators: C&C addresses and domains read from ISAC bundles, and what the city found written as one."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stix2  # type: ignore[import-untyped]
from stix2.pattern_visitor import create_pattern_object  # type: ignore[import-untyped]

from machimori.detection.indicators import IndicatorSet, TooBroad, TooMany, normalise
from machimori.detection.reading import ReadReport
from machimori.diagnostics import InputError, Problem

#: JSON nested deeper than this is refused before STIX parsing sees it (no STIX content needs more).
MAX_DEPTH = 32
#: The observable types whose value an indicator's pattern may compare.
ADDRESS_TYPES = ("ipv4-addr", "ipv6-addr")
OBSERVABLE_TYPES = (*ADDRESS_TYPES, "domain-name")
#: The names (ja, en) and STIX indicator type of each role a found address or domain plays.
ROLES = {
    "c2": ("C&C サーバの疑い", "Suspected C&C server", "malicious-activity"),
    "scanner": ("スキャン元", "Scanning source", "malicious-activity"),
    "malware-host": ("マルウェア配布元の疑い", "Suspected malware distribution host", "malicious-activity"),
    "compromised": ("侵害された機器の疑い", "Suspected compromised host", "compromised"),
    "ddos-target": ("DDoS 攻撃の標的", "DDoS target", "anomalous-activity"),
}
_OTHER_ROLE = ("不審な通信先", "Suspicious endpoint", "anomalous-activity")
#: The UUIDv5 namespace of machimori's STIX ids: the same finding exported twice keeps its id.
_NAMESPACE = uuid.UUID("863bad87-5e8e-43f0-8ab8-9fcd5e763912")
#: The identity never changes, so every export carries the same version of it.
_IDENTITY_CREATED = datetime(2024, 1, 1, tzinfo=UTC)
_STIX_MAX_COUNT = 999_999_999
_SIMPLE = re.compile(r"\[\s*(ipv4-addr|ipv6-addr|domain-name)\s*:\s*value\s*(?:=|ISSUBSET)\s*'([^'\\]*)'\s*\]")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def read_bundle(text: str, name: str, into: IndicatorSet, report: ReadReport) -> None:
    """Add the usable indicators and bare observables of a STIX 2.1 bundle; the rest is counted in the report."""
    objects = _objects(_json(text, name), name)
    referenced = _referenced(objects)
    problems: list[Problem] = []
    for index, raw in enumerate(objects):
        where = _where(name, index, raw)
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            report.skip(where, 0, "STIX オブジェクトではありません / not a STIX object")
            continue
        if raw["type"] == "indicator" or (raw["type"] in OBSERVABLE_TYPES and raw.get("id") not in referenced):
            try:
                _take(raw, where, into, report)
            except TooBroad as exc:
                problems.append(Problem(where, 0, 0, str(exc)))
            except TooMany as exc:
                raise InputError.single(where, str(exc)) from None
    if problems:
        raise InputError(problems)


def _where(name: str, index: int, raw: Any) -> str:
    """How a message names an object of the bundle: its id, or its place when it has none."""
    stix_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(stix_id, str) and len(stix_id) <= 100:
        return f"{name}:{stix_id}"
    return f"{name}:objects[{index}]"


def _json(text: str, name: str) -> dict[str, Any]:
    """The bundle's JSON object; broken or too deeply nested JSON is an InputError."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.single(
            name, f"JSON として読めません / not valid JSON: {exc.msg}", exc.lineno, exc.colno
        ) from None
    except RecursionError:
        raise InputError.single(
            name, f"JSON の入れ子が深すぎます / JSON nested too deeply (more than {MAX_DEPTH})"
        ) from None
    except ValueError as exc:
        raise InputError.single(name, f"JSON として読めません / not valid JSON: {exc}") from None
    if not _shallow(document):
        raise InputError.single(name, f"JSON の入れ子が深すぎます / JSON nested too deeply (more than {MAX_DEPTH})")
    if not isinstance(document, dict) or document.get("type") != "bundle":
        raise InputError.single(
            name, 'STIX 2.1 のバンドルではありません / JSON but not a STIX 2.1 bundle ("type": "bundle")'
        )
    return document


def _shallow(document: Any) -> bool:
    """Whether JSON nests no deeper than MAX_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _objects(bundle: dict[str, Any], name: str) -> list[Any]:
    """The objects of a bundle; anything but a list is an InputError."""
    objects = bundle.get("objects", [])
    if not isinstance(objects, list):
        raise InputError.single(
            name, 'バンドルの "objects" が配列ではありません / the bundle\'s "objects" is not a list'
        )
    return objects


def _referenced(objects: list[Any]) -> set[str]:
    """The ids other objects point at (`*_ref`, `*_refs`): observables that describe a sighting, not a threat."""
    ids: set[str] = set()
    for raw in objects:
        if not isinstance(raw, dict):
            continue
        for key, value in raw.items():
            if key.endswith("_ref") and isinstance(value, str):
                ids.add(value)
            elif key.endswith("_refs") and isinstance(value, list):
                ids.update(item for item in value if isinstance(item, str))
    return ids


def _take(raw: dict[str, Any], where: str, into: IndicatorSet, report: ReadReport) -> None:
    """Add what one indicator or observable says is bad, or count why it was skipped."""
    try:
        parsed = stix2.parse(raw, allow_custom=True)
    except Exception:  # stix2 raises many kinds for a hostile object; each is one skipped object
        parsed = None
    if parsed is None or isinstance(parsed, dict):  # a dict back: a version or type stix2 does not know
        report.skip(where, 0, "STIX として正しくないオブジェクト / invalid STIX object")
        return
    if raw["type"] != "indicator":
        _add(into, report, where, [(raw["type"], parsed["value"])], source=parsed["id"])
        return
    reason = _unusable(parsed, into.clock())
    values = [] if reason else _pattern_values(parsed["pattern"])
    if not reason and not values:
        reason = "使えないパターン / pattern not usable (only addresses, networks and domains compared with = ISSUBSET IN, joined by OR)"
    if reason:
        report.skip(where, 0, reason)
        return
    labels = {*parsed.get("labels", ()), *parsed.get("indicator_types", ())}
    valid_until = parsed.get("valid_until")
    meta: dict[str, Any] = {
        "source": parsed["id"],
        "name": parsed.get("name", ""),
        "description": parsed.get("description", ""),
        "labels": sorted(labels),
        "valid_until": None if valid_until is None else datetime.fromtimestamp(valid_until.timestamp(), UTC),
        "confidence": parsed.get("confidence"),
    }
    _add(into, report, where, values, **meta)


def _unusable(indicator: Any, now: float) -> str:
    """Why an indicator is not taken (revoked, expired, not a STIX pattern), or "" when it is."""
    if indicator.get("revoked"):
        return "取り消し済み / revoked"
    valid_until = indicator.get("valid_until")
    if valid_until is not None and valid_until.timestamp() <= now:
        return "有効期限切れ / expired (valid_until passed)"
    if indicator.get("pattern_type", "stix") != "stix":
        return "STIX パターンではありません / pattern type is not stix"
    return ""


def _add(into: IndicatorSet, report: ReadReport, where: str, values: list[tuple[str, str]], **meta: Any) -> None:
    """Add the (observable type, value) pairs of one object; a value of the wrong kind is counted, not added."""
    for path_type, value in values:
        try:
            kind, _canonical = normalise(value)
            if (path_type == "domain-name") != (kind == "domain-name") and path_type in OBSERVABLE_TYPES:
                raise ValueError("kind mismatch")
            into.add(value, **meta)
            report.read += 1
        except (TooBroad, TooMany):
            raise
        except ValueError:
            report.skip(where, 0, "アドレスでもドメインでもない値 / value is not an address, network or domain")


def _pattern_values(pattern: str) -> list[tuple[str, str]]:
    """The (observable type, value) pairs a pattern of ORed equality, ISSUBSET or IN comparisons names."""
    simple = _SIMPLE.fullmatch(pattern)
    if simple:
        return [(simple[1], simple[2])]
    try:
        tree = create_pattern_object(pattern, version="2.1")
    except Exception:  # the validator accepted it already; a grammar this module cannot build is just unusable
        return []
    return list(_observations(tree))


def _observations(node: Any) -> Iterator[tuple[str, str]]:
    """The values of ORed observation expressions; qualified, ANDed or FOLLOWEDBY ones give nothing."""
    kind = type(node).__name__
    if kind == "ParentheticalExpression":
        yield from _observations(node.expression)
    elif kind == "OrObservationExpression":
        for operand in node.operands:
            yield from _observations(operand)
    elif kind == "ObservationExpression":
        yield from _comparisons(node.operand)


def _comparisons(node: Any) -> Iterator[tuple[str, str]]:
    """The values of ORed comparisons of an observable's value; ANDed, negated or other operators give nothing."""
    kind = type(node).__name__
    if kind == "ParentheticalExpression":
        yield from _comparisons(node.expression)
    elif kind == "OrBooleanExpression":
        for operand in node.operands:
            yield from _comparisons(operand)
    elif kind in ("EqualityComparisonExpression", "IsSubsetComparisonExpression", "InComparisonExpression"):
        path_type = _value_path(node.lhs)
        if node.negated or not path_type:
            return
        constants = node.rhs.value if kind == "InComparisonExpression" else [node.rhs]
        for constant in constants:
            if type(constant).__name__ == "StringConstant":
                yield path_type, _ESCAPE.sub(r"\1", constant.value)


def _value_path(path: Any) -> str:
    """The observable type when a path is `<address or domain>:value` or `network-traffic:dst_ref.value` (src_ref)."""
    names = [getattr(component, "property_name", None) for component in path.property_path]
    if all(type(c).__name__ == "BasicObjectPathComponent" for c in path.property_path):
        if path.object_type_name in OBSERVABLE_TYPES and names == ["value"]:
            return str(path.object_type_name)
        if path.object_type_name == "network-traffic" and names in (["dst_ref", "value"], ["src_ref", "value"]):
            return "network-traffic"
    return ""


@dataclass(frozen=True)
class FoundIndicator:
    """An address or domain the city found playing a role (C&C server, scanner…), to share with an ISAC."""

    value: str
    kind: str
    role: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    description_ja: str = ""
    description_en: str = ""
    confidence: int = 50

    def __post_init__(self) -> None:
        """Refuse what would make an invalid or misleading STIX indicator."""
        kind, canonical = normalise(self.value)
        if kind != self.kind:
            raise ValueError(f"値の種類が {kind} です / value {self.value!r} is a {kind}, not a {self.kind}")
        object.__setattr__(self, "value", canonical)
        if self.first_seen.tzinfo is None or self.last_seen.tzinfo is None:
            raise ValueError("時刻にタイムゾーンがありません / first_seen and last_seen must be timezone-aware (UTC)")
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen が first_seen より前です / last_seen is before first_seen")
        if self.count < 1 or not 0 <= self.confidence <= 100 or not self.role:
            raise ValueError("count ≥ 1、confidence 0〜100、role が必要です / count ≥ 1, confidence 0-100 and a role")


def export_stix(
    findings: Iterable[FoundIndicator],
    *,
    identity_name: str,
    valid_for: timedelta | None = timedelta(days=30),
    sightings: bool = True,
) -> str:
    """A STIX 2.1 bundle (pretty JSON) of what the city found: its identity, an indicator each, and their sightings."""
    identity = stix2.v21.Identity(
        id=f"identity--{uuid.uuid5(_NAMESPACE, identity_name)}",
        name=identity_name,
        identity_class="organization",
        created=_IDENTITY_CREATED,
        modified=_IDENTITY_CREATED,
    )
    objects: list[Any] = [identity]
    for found in findings:
        indicator = _indicator(found, identity.id, valid_for)
        objects.append(indicator)
        if sightings:
            objects.extend(_sighting(found, identity.id, indicator.id))
    return str(stix2.v21.Bundle(objects=objects).serialize(pretty=True, ensure_ascii=False))


def _id(kind: str, *parts: str) -> str:
    """A STIX id that is the same each time the same thing is exported."""
    return f"{kind}--{uuid.uuid5(_NAMESPACE, '|'.join((kind, *parts)))}"


def _indicator(found: FoundIndicator, identity: str, valid_for: timedelta | None) -> Any:
    """The STIX indicator of one found address or domain."""
    ja, en, indicator_type = ROLES.get(found.role, _OTHER_ROLE)
    operator = "ISSUBSET" if "/" in found.value else "="
    literal = found.value.replace("\\", "\\\\").replace("'", "\\'")
    period = f"{_rfc3339(found.first_seen)} – {_rfc3339(found.last_seen)}"
    description_ja = found.description_ja or f"{ja}: {found.value}（{found.count} 回観測、{period}）"
    description_en = found.description_en or f"{en}: {found.value} (seen {found.count} times, {period})"
    return stix2.v21.Indicator(
        id=_id("indicator", identity, found.kind, found.value, found.role),
        created=found.first_seen,
        modified=found.last_seen,
        created_by_ref=identity,
        name=f"{ja} / {en}: {found.value}",
        description=f"{description_ja}\n\n{description_en}",
        indicator_types=[indicator_type],
        pattern=f"[{found.kind}:value {operator} '{literal}']",
        pattern_type="stix",
        pattern_version="2.1",
        valid_from=found.first_seen,
        valid_until=None if valid_for is None else found.last_seen + valid_for,
        labels=[found.role],
        confidence=found.confidence,
    )


def _sighting(found: FoundIndicator, identity: str, indicator: str) -> list[Any]:
    """The observable, observed data and sighting that say when and how often the city saw it."""
    observable_class = {
        "ipv4-addr": stix2.v21.IPv4Address,
        "ipv6-addr": stix2.v21.IPv6Address,
        "domain-name": stix2.v21.DomainName,
    }[found.kind]
    observable = observable_class(value=found.value)
    count = min(found.count, _STIX_MAX_COUNT)
    times = {"created": found.first_seen, "modified": found.last_seen, "created_by_ref": identity}
    observed = stix2.v21.ObservedData(
        id=_id("observed-data", indicator),
        first_observed=found.first_seen,
        last_observed=found.last_seen,
        number_observed=count,
        object_refs=[observable.id],
        **times,
    )
    sighting = stix2.v21.Sighting(
        id=_id("sighting", indicator),
        sighting_of_ref=indicator,
        observed_data_refs=[observed.id],
        where_sighted_refs=[identity],
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        count=count,
        **times,
    )
    return [observable, observed, sighting]


def _rfc3339(moment: datetime) -> str:
    """A time in UTC as RFC 3339 to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
