"""Generate a large, realistic-shaped city model for benchmarks and scale tests.

Usage: python bench/generate_model.py --components 10000 --flows 100000 [--seed 1] -o bench/out/city-10k.yaml

The model has the shape of a real smart city, scaled: a promoter and municipal divisions, city-OS
operators, cloud hosts, service providers with subcontracting chains up to three tiers deep, device
vendors and network operators; components in all four guideline categories; open, limited and closed
datasets, some personal; flows from devices through gateways and the city OS to services, mostly
encrypted and authenticated; services with purposes and consent bases; and status records at city,
stakeholder and component level. A small share of everything is flawed the way real towns are, so
every finding kind occurs. Everything but the city-wide status records grows linearly with
``--components`` and ``--flows``, and the same seed always gives the same file.

The YAML is written as text in plain block style (no anchors, aliases, tags or ``~``) so that
machimori's fast YAML path reads it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CPSF_REQUIREMENT_COUNTS: dict[str, int] = {
    "AM": 7, "BE": 3, "GV": 4, "RA": 6, "RM": 3, "SC": 11, "AC": 9, "AT": 3, "DS": 15, "IP": 10,
    "MA": 2, "PT": 2, "AE": 3, "CM": 7, "DP": 4, "RP": 4, "CO": 3, "AN": 3, "MI": 1, "IM": 2,
}  # fmt: skip
"""How many requirements each CPSF category has (CPS.AM-1 … CPS.AM-7, ...)."""

REQUIREMENTS: tuple[str, ...] = tuple(
    f"CPS.{code}-{n}" for code, count in CPSF_REQUIREMENT_COUNTS.items() for n in range(1, count + 1)
)

# Requirements a stakeholder or a component typically reports on, by what it is.
GOVERNANCE_ONLY = ("CPS.GV-2", "CPS.GV-3", "CPS.RM-1", "CPS.SC-4", "CPS.SC-5", "CPS.AT-1", "CPS.AT-2",
                   "CPS.IP-9", "CPS.DP-1", "CPS.CO-1", "CPS.CO-2", "CPS.IM-1")  # fmt: skip
TECHNICAL: dict[str, tuple[str, ...]] = {
    # Disjoint per kind of organisation, so that a component's owner and operator report on different rows.
    "service": ("CPS.AC-4", "CPS.AC-7", "CPS.AC-9", "CPS.DS-2", "CPS.DS-6", "CPS.DS-12", "CPS.IP-2", "CPS.IP-3",
                "CPS.PT-1", "CPS.RP-1"),
    "platform": ("CPS.AC-1", "CPS.AC-6", "CPS.AC-8", "CPS.DS-3", "CPS.DS-10", "CPS.DS-15", "CPS.IP-10", "CPS.CM-1",
                 "CPS.CM-7", "CPS.PT-2"),
    "device": ("CPS.AC-2", "CPS.AC-3", "CPS.DS-7", "CPS.DS-9", "CPS.DS-14", "CPS.IP-1", "CPS.MA-1", "CPS.MA-2",
               "CPS.RA-1", "CPS.CM-6"),
}  # fmt: skip
TECHNICAL_OF_KIND = {
    "service-provider": "service", "subcontractor": "service", "city-os-operator": "platform",
    "device-vendor": "device", "network-operator": "device",
}  # fmt: skip
BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "governance": ("CPS.AM-1", "CPS.GV-1", "CPS.RA-1", "CPS.RP-1", "CPS.AC-1", "CPS.AC-5", "CPS.IP-10"),
    "service": ("CPS.AC-1", "CPS.AC-4", "CPS.AC-9", "CPS.DS-2", "CPS.DS-3", "CPS.DS-6", "CPS.IP-2", "CPS.PT-1"),
    "city-os": ("CPS.AC-1", "CPS.AC-4", "CPS.AC-6", "CPS.AC-8", "CPS.DS-3", "CPS.DS-10", "CPS.PT-1", "CPS.CM-1"),
    "asset": ("CPS.AC-3", "CPS.AC-4", "CPS.DS-3", "CPS.DS-9", "CPS.DS-14", "CPS.IP-1", "CPS.MA-1", "CPS.MA-2"),
}

STATUS_WEIGHTS = (("implemented", 55), ("partial", 20), ("planned", 10), ("not-implemented", 7), ("unknown", 6),
                  ("not-applicable", 2))  # fmt: skip

KINDS: dict[str, tuple[tuple[str, int], ...]] = {
    "governance": (("", 6), ("soc", 1)),
    "service": (("application", 6), ("portal", 2), ("database", 2)),
    "city-os": (("broker", 3), ("api-gateway", 2), ("platform", 3), ("database", 2), ("id-provider", 1)),
    "asset": (("sensor", 12), ("camera", 3), ("actuator", 1), ("gateway", 3), ("network", 1)),
}
LAYERS = {"governance": (1, 2, 3), "service": (4,), "city-os": (5, 6, 7), "asset": (8,)}
CATEGORY_SHARE = (("governance", 3), ("service", 30), ("city-os", 12), ("asset", 55))

KIND_JA = {
    "": "規程・体制", "soc": "SOC", "application": "アプリケーション", "portal": "ポータル", "database": "データベース",
    "broker": "ブローカー", "api-gateway": "API ゲートウェイ", "platform": "基盤", "id-provider": "認証基盤",
    "sensor": "センサー", "camera": "カメラ", "actuator": "アクチュエータ", "gateway": "ゲートウェイ",
    "network": "ネットワーク",
}  # fmt: skip
STAKEHOLDER_JA = {
    "promoter": "推進主体", "municipality": "自治体部局", "city-os-operator": "都市OS事業者",
    "service-provider": "サービス事業者", "device-vendor": "機器ベンダー", "network-operator": "通信事業者",
    "subcontractor": "委託先",
}  # fmt: skip

DEVICE_PROTOCOLS = ("LoRaWAN 1.0.4 (AES-128)", "MQTT over TLS", "MQTT over TLS (client certificate)",
                    "HTTPS (device certificate)", "Wi-SUN FAN (DTLS)")  # fmt: skip
DEVICE_PLAIN = ("MQTT (plaintext)", "HTTP (plaintext)", "RTSP (plaintext)", "Modbus/TCP")
UPLINK_PROTOCOLS = ("MQTT over TLS (mutual TLS)", "LoRa Basics Station over WebSocket/TLS", "HTTPS")
PLATFORM_PROTOCOLS = ("NGSI-LD over HTTPS", "NGSI-LD over HTTPS (mutual TLS)", "HTTPS (OAuth 2.0)",
                      "PostgreSQL over TLS")  # fmt: skip
SERVICE_PROTOCOLS = ("NGSI-LD over HTTPS (OAuth 2.0)", "HTTPS (OAuth 2.0)", "HTTPS (mutual TLS)",
                     "PostgreSQL over TLS", "HTTPS webhook (signed)")  # fmt: skip
LOG_PROTOCOLS = ("syslog over TLS (RFC 5425)", "HTTPS (append-only API)")

PURPOSES = ("elderly-watch", "child-care", "transit-information", "tourism-planning", "flood-monitoring",
            "evacuation-alert", "energy-management", "waste-collection", "parking-guidance", "health-support",
            "road-maintenance", "snow-removal", "resident-login", "event-information")  # fmt: skip
CONSENT_BASES = (("consent", 45), ("contract", 20), ("public-task", 20), ("legal-obligation", 5),
                 ("vital-interest", 3), ("none", 7))  # fmt: skip

CITY = "gen-city"
BASE_DATE = dt.date(2026, 1, 1)


@dataclass
class Sizes:
    """How many of each element a model of a given size has; everything is linear in the two inputs."""

    components: int
    flows: int
    stakeholders: int = field(init=False)
    datasets: int = field(init=False)
    services: int = field(init=False)
    component_records: int = field(init=False)

    def __post_init__(self) -> None:
        self.stakeholders = max(16, self.components // 30)
        self.datasets = max(8, self.components // 20)
        self.services = max(3, self.components // 50)
        self.component_records = self.components * 3 // 20


@dataclass
class _Stakeholder:
    id: str
    kind: str
    parent: str | None = None
    cloud: bool = False
    subcontractors: list[str] = field(default_factory=list)


@dataclass
class _Component:
    id: str
    category: str
    kind: str
    owner: str | None
    operator: str
    hosted_by: str | None = None


@dataclass
class _Dataset:
    id: str
    data_type: str
    personal: bool


class _Writer:
    """Collects YAML lines; strings that could confuse a YAML reader are double-quoted."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.append = self.lines.append

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def _date(rng: random.Random, start_days: int, end_days: int) -> str:
    return (BASE_DATE + dt.timedelta(days=rng.randint(start_days, end_days))).isoformat()


def make_stakeholders(rng: random.Random, count: int) -> list[_Stakeholder]:
    """The promoter, municipal divisions, operators, hosts, providers, vendors and subcontracting chains."""
    result = [_Stakeholder(CITY, "promoter")]
    plan = (
        ("municipality", "div", max(2, count // 60)),
        ("city-os-operator", "osop", max(1, count // 150)),
        ("service-provider", "cloud", max(1, count // 100)),
        ("network-operator", "net", max(1, count // 25)),
        ("device-vendor", "vendor", max(2, count * 3 // 20)),
    )
    for kind, prefix, n in plan:
        for i in range(1, n + 1):
            result.append(_Stakeholder(f"{prefix}-{i:04d}", kind, cloud=prefix == "cloud"))
    remaining = count - len(result)
    providers = max(2, remaining * 2 // 5)
    for i in range(1, providers + 1):
        result.append(_Stakeholder(f"sp-{i:04d}", "service-provider"))
    parents = [s for s in result if s.kind == "service-provider" and not s.cloud]
    tier = {s.id: 0 for s in parents}
    root = {s.id: s for s in parents}
    for i in range(1, max(2, count - len(result)) + 1):
        # Some subcontractors re-delegate in turn: chains reach a second and a third tier.
        candidates = [p for p in rng.sample(parents, min(3, len(parents))) if tier[p.id] < 3]
        parent = candidates[0] if candidates else parents[0]
        sub = _Stakeholder(f"sub-{i:04d}", "subcontractor", parent=parent.id)
        tier[sub.id] = tier[parent.id] + 1
        root[sub.id] = root[parent.id]
        root[sub.id].subcontractors.append(sub.id)
        if rng.random() < 0.4:
            parents.append(sub)
        result.append(sub)
    return result


def _write_stakeholders(w: _Writer, rng: random.Random, stakeholders: list[_Stakeholder]) -> None:
    w.append("stakeholders:")
    for s in stakeholders:
        number = s.id.rsplit("-", 1)[-1]
        label = "クラウド事業者" if s.cloud else STAKEHOLDER_JA[s.kind]
        w.append(f"  - id: {s.id}")
        w.append(f"    kind: {s.kind}")
        w.append("    name:")
        w.append(f"      ja: {label} {number}")
        w.append(f"      en: {'Cloud host' if s.cloud else s.kind.replace('-', ' ').capitalize()} {number}")
        if s.parent:
            w.append(f"    parent: {s.parent}")
        if s.kind == "promoter" or rng.random() < 0.97:
            w.append("    incident_contact:")
            w.append(f"      name: {s.id} security desk")
            w.append(f"      email: security@{s.id}.example.jp")
            w.append(f"      phone: 0000-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}")
        if s.kind == "promoter":
            continue
        counterpart = s.parent or CITY
        agreements = []
        if s.kind in ("subcontractor", "service-provider", "city-os-operator") and rng.random() < 0.97:
            agreements.append(("data-handling", counterpart))
        agreements.append(("security-requirements", counterpart))
        if rng.random() < 0.6:
            agreements.append(("nda", counterpart))
        w.append("    agreements:")
        for kind, other in agreements:
            w.append(f"      - kind: {kind}")
            w.append(f"        with: {other}")
            roll = rng.random()
            if roll < 0.5:
                w.append(f"        reference: {kind} agreement {s.id}/{other}")
            if roll < 0.7:
                # Mostly valid for years; about 1 in 40 has lapsed by the end of 2026.
                w.append(f"        expires: {_date(rng, 300, 1500) if rng.random() > 0.025 else _date(rng, 0, 299)}")


def make_components(rng: random.Random, count: int, stakeholders: list[_Stakeholder]) -> list[_Component]:
    """Components in the four categories, each owned, operated and hosted by stakeholders of the right kind."""
    by_kind: dict[str, list[_Stakeholder]] = {}
    for s in stakeholders:
        by_kind.setdefault("cloud" if s.cloud else s.kind, []).append(s)
    city_side = [CITY] + [s.id for s in by_kind["municipality"]]
    clouds = [s.id for s in by_kind["cloud"]]
    result = []
    for i in range(1, count + 1):
        category = _weighted(rng, CATEGORY_SHARE)
        kind = _weighted(rng, KINDS[category])
        hosted_by: str | None = None
        owner: str | None
        if category == "governance":
            owner = operator = rng.choice(city_side)
        elif category == "service":
            provider = rng.choice(by_kind["service-provider"])
            owner = provider.id
            operator = rng.choice(provider.subcontractors) if provider.subcontractors and rng.random() < 0.6 else owner
            hosted_by = rng.choice(clouds) if rng.random() < 0.8 else None
        elif category == "city-os":
            operator = rng.choice(by_kind["city-os-operator"]).id
            owner = CITY if rng.random() < 0.7 else operator
            hosted_by = rng.choice(clouds)
        elif kind in ("gateway", "network"):
            owner = operator = rng.choice(by_kind["network-operator"]).id
        else:
            owner = rng.choice(city_side) if rng.random() < 0.6 else rng.choice(by_kind["service-provider"]).id
            operator = rng.choice(by_kind["device-vendor"]).id if rng.random() < 0.6 else owner
        if rng.random() < 0.003:
            owner = None
        result.append(_Component(f"{category[:3]}-{kind or 'doc'}-{i:06d}", category, kind, owner, operator, hosted_by))
    return result


def _write_components(w: _Writer, rng: random.Random, components: list[_Component]) -> None:
    w.append("components:")
    for c in components:
        number = c.id.rsplit("-", 1)[-1]
        w.append(f"  - id: {c.id}")
        w.append(f"    category: {c.category}")
        w.append(f"    layer: {rng.choice(LAYERS[c.category])}")
        if c.kind:
            w.append(f"    kind: {c.kind}")
        w.append("    name:")
        w.append(f"      ja: {KIND_JA[c.kind]} {number}")
        w.append(f"      en: {(c.kind or 'policy').replace('-', ' ')} {number}")
        if c.owner:
            w.append(f"    owner: {c.owner}")
        w.append(f"    operator: {c.operator}")
        if c.hosted_by:
            w.append(f"    hosted_by: {c.hosted_by}")


def make_datasets(rng: random.Random, count: int, stakeholders: list[_Stakeholder]) -> list[_Dataset]:
    """Open, limited and closed datasets; personal ones are mostly closed, a very few wrongly open."""
    result = []
    for i in range(1, count + 1):
        personal = rng.random() < 0.25
        if personal:
            data_type = _weighted(rng, (("closed", 70), ("limited", 28), ("open", 2)))
        else:
            data_type = _weighted(rng, (("open", 55), ("limited", 25), ("closed", 20)))
        result.append(_Dataset(f"ds-{i:05d}", data_type, personal))
    return result


def _write_datasets(w: _Writer, rng: random.Random, datasets: list[_Dataset], stakeholders: list[_Stakeholder]) -> None:
    owners = [s.id for s in stakeholders if s.kind in ("promoter", "municipality", "service-provider") and not s.cloud]
    w.append("datasets:")
    for d in datasets:
        w.append(f"  - id: {d.id}")
        w.append("    name:")
        w.append(f"      ja: データセット {d.id[3:]}")
        w.append(f"      en: Dataset {d.id[3:]}")
        w.append(f"    data_type: {d.data_type}")
        if d.personal:
            w.append("    personal: true")
        w.append(f"    owner: {rng.choice(owners)}")
        if rng.random() < 0.5:
            w.append(
                f"    handling_policy: {_q('取扱方針 ' + d.id + ' / handling policy for ' + d.data_type + ' data')}"
            )


def make_flows(rng: random.Random, count: int, components: list[_Component], datasets: list[_Dataset]) -> Iterator[str]:
    """YAML lines of ``count`` flows following the usual paths of a city's data."""
    pools: dict[str, list[str]] = {}
    for c in components:
        if c.category == "asset":
            role = "gateway" if c.kind == "gateway" else "network" if c.kind == "network" else "device"
        elif c.category == "governance":
            role = "soc" if c.kind == "soc" else "doc"
        else:
            role = c.category
        pools.setdefault(role, []).append(c.id)
    every = [c.id for c in components]
    actuators = [c.id for c in components if c.kind == "actuator"] or every
    device = pools.get("device") or every
    gateway = pools.get("gateway") or every
    platform = pools.get("city-os") or every
    service = pools.get("service") or every
    soc = pools.get("soc") or every
    routes = (
        (device, gateway, DEVICE_PROTOCOLS, 35),
        (gateway, platform, UPLINK_PROTOCOLS, 20),
        (platform, platform, PLATFORM_PROTOCOLS, 15),
        (platform, service, SERVICE_PROTOCOLS, 18),
        (service, service, SERVICE_PROTOCOLS, 5),
        (service, actuators, DEVICE_PROTOCOLS, 2),
        (platform + service, soc, LOG_PROTOCOLS, 5),
    )
    choose = rng.choices
    route_of = choose(range(len(routes)), weights=[r[3] for r in routes], k=count)
    ids = [d.id for d in datasets]
    for i, r in enumerate(route_of, 1):
        senders, receivers, protocols, _ = routes[r]
        sender = rng.choice(senders)
        receiver = rng.choice(receivers)
        if receiver == sender:
            receiver = rng.choice(platform)
        encrypted = rng.random() < 0.975
        authenticated = rng.random() < 0.97
        protocol = rng.choice(protocols) if encrypted else rng.choice(DEVICE_PLAIN)
        yield f"  - id: f-{i:07d}"
        yield f"    from: {sender}"
        yield f"    to: {receiver}"
        yield f"    dataset: {rng.choice(ids)}"
        yield f"    protocol: {protocol}"
        yield f"    encrypted: {'true' if encrypted else 'false'}"
        yield f"    authenticated: {'true' if authenticated else 'false'}"
        if rng.random() < 0.02:
            yield "    crosses_boundary: true"


def _write_services(
    w: _Writer,
    rng: random.Random,
    count: int,
    components: list[_Component],
    datasets: list[_Dataset],
    stakeholders: list[_Stakeholder],
) -> None:
    providers = [s.id for s in stakeholders if s.kind == "service-provider" and not s.cloud]
    owned: dict[str, list[str]] = {}
    for c in components:
        if c.category == "service" and c.owner:
            owned.setdefault(c.owner, []).append(c.id)
    w.append("services:")
    for i in range(1, count + 1):
        provider = rng.choice(providers)
        mine = owned.get(provider) or [c.id for c in rng.sample(components, 2)]
        used = rng.sample(datasets, min(len(datasets), rng.randint(1, 4)))
        personal = any(d.personal for d in used)
        basis = _weighted(rng, CONSENT_BASES) if personal else rng.choice(("none", "public-task"))
        w.append(f"  - id: svc-{i:04d}")
        w.append("    name:")
        w.append(f"      ja: サービス {i:04d}")
        w.append(f"      en: Service {i:04d}")
        w.append(f"    provider: {provider}")
        w.append("    components:")
        for c_id in sorted(set(rng.sample(mine, min(len(mine), rng.randint(1, 5))))):
            w.append(f"      - {c_id}")
        w.append("    datasets:")
        for d in used:
            w.append(f"      - {d.id}")
        w.append("    purposes:")
        for purpose in rng.sample(PURPOSES, rng.randint(1, 2)):
            w.append(f"      - id: {purpose}")
        w.append(f"    consent_basis: {basis}")


def _status_record(
    w: _Writer,
    rng: random.Random,
    requirement: str,
    scope: tuple[str, str] | None,
    responsible: str,
    accountable: list[str],
) -> None:
    status = _weighted(rng, STATUS_WEIGHTS)
    w.append(f"  - requirement: {requirement}")
    if scope:
        w.append(f"    {scope[0]}: {scope[1]}")
    w.append(f"    status: {status}")
    if responsible:
        w.append(f"    responsible: {responsible}")
    if len(accountable) == 1:
        w.append(f"    accountable: {accountable[0]}")
    elif accountable:
        w.append(f"    accountable: [{', '.join(accountable)}]")
    if rng.random() < 0.6:
        w.append(f"    evidence: {_q('根拠資料 ' + requirement + ' / evidence ' + str(rng.randint(1, 999)))}")
    if status not in ("implemented", "not-applicable") and rng.random() < 0.6:
        w.append(f"    due: {_date(rng, 0, 730)}")


def _write_statuses(
    w: _Writer, rng: random.Random, sizes: Sizes, components: list[_Component], stakeholders: list[_Stakeholder]
) -> None:
    w.append("statuses:")
    # City-wide: one row per requirement, owned by the promoter; two rows nobody owns.
    unowned = set(rng.sample(REQUIREMENTS, 2))
    for requirement in REQUIREMENTS:
        if requirement in unowned:
            _status_record(w, rng, requirement, None, "", [])
        else:
            _status_record(w, rng, requirement, None, CITY, [CITY])
    # Stakeholder-level: what each organisation reports for its own part. Subcontractors answer to the
    # root of their chain, and each kind of organisation reports on its own technical requirements
    # (municipal divisions on organisational ones only), so a component's owner and operator do not
    # both claim accountability for one row.
    parent = {s.id: s.parent for s in stakeholders}
    root: dict[str, str] = {}
    for s in stakeholders:
        top, up = s.id, s.parent
        while up is not None:
            top, up = up, parent[up]
        root[s.id] = top
    for s in stakeholders:
        if s.kind == "promoter":
            continue
        pool = GOVERNANCE_ONLY + TECHNICAL.get(TECHNICAL_OF_KIND.get(s.kind, ""), ())
        answers_to = root[s.id] if s.kind in ("service-provider", "subcontractor") else CITY
        for requirement in rng.sample(pool, rng.randint(3, 7)):
            _status_record(w, rng, requirement, ("stakeholder", s.id), s.id, [answers_to])
    # Component-level: specific rows; about 1 in 200 names two accountable parties.
    for c in rng.sample(components, min(len(components), sizes.component_records)):
        requirement = rng.choice(BY_CATEGORY[c.category])
        accountable = [c.owner or CITY]
        if rng.random() < 0.005 and c.operator not in accountable:
            accountable.append(c.operator)
        _status_record(w, rng, requirement, ("component", c.id), c.operator, accountable)


def generate(components: int, flows: int, seed: int = 1) -> str:
    """The text of a city model with this many components and flows; the same seed gives the same text."""
    rng = random.Random(seed)
    sizes = Sizes(components, flows)
    stakeholders = make_stakeholders(rng, sizes.stakeholders)
    comps = make_components(rng, components, stakeholders)
    datasets = make_datasets(rng, sizes.datasets, stakeholders)
    w = _Writer()
    w.append(f"# Generated by bench/generate_model.py --components {components} --flows {flows} --seed {seed}")
    w.append("city:")
    w.append(f"  id: {CITY}")
    w.append("  name:")
    w.append(f"    ja: 生成都市 {components}")
    w.append(f"    en: Generated city {components}")
    w.append(f"  promoter: {CITY}")
    _write_stakeholders(w, rng, stakeholders)
    _write_components(w, rng, comps)
    _write_datasets(w, rng, datasets, stakeholders)
    w.append("flows:")
    w.lines.extend(make_flows(rng, flows, comps, datasets))
    _write_services(w, rng, sizes.services, comps, datasets, stakeholders)
    _write_statuses(w, rng, sizes, comps, stakeholders)
    return w.text()


def write_model(path: str | Path, components: int, flows: int, seed: int = 1) -> Path:
    """Generate a model and write it to ``path`` (creating its folder)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(generate(components, flows, seed), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=10_000)
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.components < 1 or args.flows < 0:
        parser.error("--components must be at least 1 and --flows at least 0")
    start = time.perf_counter()
    path = write_model(args.output, args.components, args.flows, args.seed)
    elapsed = time.perf_counter() - start
    print(
        f"wrote {path}: {args.components:,} components, {args.flows:,} flows, "
        f"{path.stat().st_size / 1e6:.1f} MB in {elapsed:.2f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
