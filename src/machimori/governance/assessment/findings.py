"""The checks that find concrete flaws in a city model, each with a stable kind."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator

from machimori.governance.assessment.index import ModelIndex
from machimori.governance.assessment.result import DONE, Element, Finding, Target
from machimori.governance.assessment.risks import rate

Check = Callable[[ModelIndex, list[Target], dt.date], Iterator[Finding]]

FINDING_KINDS: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "unencrypted-flow": (4, 4, ("CPS.DS-3",)),
    "unauthenticated-flow": (3, 3, ("CPS.AC-1", "CPS.AC-3")),
    "personal-data-in-open-dataset": (4, 5, ("CPS.GV-1", "CPS.DS-1")),
    "subcontractor-without-agreement": (3, 4, ("CPS.SC-1", "CPS.RM-1", "CPS.DS-1")),
    "component-without-owner": (3, 3, ("CPS.AM-1",)),
    "unowned-requirement": (3, 2, ()),
    "conflicting-accountability": (2, 3, ("CPS.AC-5",)),
    "no-incident-contact": (3, 3, ("CPS.RP-1", "CPS.DP-1")),
    "overdue-requirement": (3, 3, ()),
    "personal-data-without-consent-basis": (3, 4, ("CPS.GV-1",)),
}
"""Each finding kind: base likelihood, base impact (1–5) and the requirements it bears on."""


def find_all(index: ModelIndex, targets: list[Target], as_of: dt.date) -> list[Finding]:
    """Run every check; findings sorted by score, highest first."""
    findings = [f for check in CHECKS for f in check(index, targets, as_of)]
    findings.sort(key=lambda f: (-f.score, f.kind, f.id))
    return findings


def _finding(
    index: ModelIndex,
    kind: str,
    ja: str,
    en: str,
    elements: list[Element],
    *,
    personal: bool = False,
    requirements: tuple[str, ...] = (),
    key: str | None = None,
) -> Finding:
    likelihood, impact, bears_on = FINDING_KINDS[kind]
    impact = min(5, impact + int(personal))
    score = likelihood * impact
    return Finding(
        kind=kind,
        rating=rate(score, index.model.risk_matrix),
        score=score,
        message_ja=ja,
        message_en=en,
        elements=elements,
        requirements=list(requirements or bears_on),
        key=key or elements[0].id,
    )


def unencrypted_flows(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Flows carrying limited, closed or personal data without encryption."""
    for flow in index.model.flows:
        dataset = index.datasets[flow.dataset]
        if not flow.encrypted and index.is_sensitive(dataset):
            what_en = "personal" if dataset.personal else dataset.data_type
            what_ja = "個人" if dataset.personal else {"limited": "限定公開", "closed": "クローズ"}[dataset.data_type]
            yield _finding(
                index,
                "unencrypted-flow",
                f"フロー {flow.id}（{flow.from_} → {flow.to}）は{what_ja}データ {dataset.id} を暗号化せずに送っています",
                f"Flow {flow.id} ({flow.from_} → {flow.to}) carries {what_en} data {dataset.id} without encryption",
                [
                    Element("flow", flow.id),
                    Element("component", flow.from_),
                    Element("component", flow.to),
                    Element("dataset", dataset.id),
                ],
                personal=dataset.personal,
            )


def unauthenticated_flows(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Flows whose receiver does not authenticate the sender: impersonated data gets in."""
    for flow in index.model.flows:
        if not flow.authenticated:
            dataset = index.datasets[flow.dataset]
            yield _finding(
                index,
                "unauthenticated-flow",
                f"フロー {flow.id}（{flow.from_} → {flow.to}）は送信元を認証していません（なりすましデータを受け入れ得ます）",
                f"Flow {flow.id} ({flow.from_} → {flow.to}) does not authenticate its sender "
                "(impersonated data can get in)",
                [Element("flow", flow.id), Element("component", flow.from_), Element("component", flow.to)],
                personal=dataset.personal,
            )


def personal_data_in_open_datasets(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Datasets marked personal but published as open data."""
    for dataset in index.model.datasets:
        if dataset.personal and dataset.data_type == "open":
            yield _finding(
                index,
                "personal-data-in-open-dataset",
                f"データセット {dataset.id} は個人データを含むのにオープンデータとして扱われています",
                f"Dataset {dataset.id} holds personal data but is classified as open data",
                [Element("dataset", dataset.id)],
            )


def subcontractors_without_agreement(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Subcontractors of any tier handling personal or closed data without data-handling agreements up the chain."""
    promoter = index.model.city.promoter
    for stakeholder in index.model.stakeholders:
        if stakeholder.kind != "subcontractor" or not index.handles_personal_or_closed(stakeholder.id):
            continue
        chain = index.delegation_chain(stakeholder.id)
        if index.stakeholders[chain[-1]].kind == "subcontractor":
            broken: tuple[str, str | None] | None = (chain[-1], None)
        else:
            links = list(itertools.pairwise(chain))
            if chain[-1] != promoter:
                links.append((chain[-1], promoter))
            broken = next(((a, b) for a, b in links if not _has_data_agreement(index, a, b, as_of)), None)
        if broken is None:
            continue
        child, parent = broken
        if parent is None:
            ja_link = f"{child} の委託元が定義されていません"
            en_link = f"{child} has no parent contractor"
        else:
            ja_link = f"{child} と {parent} の間に有効なデータ取扱契約がありません"
            en_link = f"no valid data-handling agreement between {child} and {parent}"
        elements = [
            Element("stakeholder", s) for s in dict.fromkeys([stakeholder.id, child, *([parent] if parent else [])])
        ]
        yield _finding(
            index,
            "subcontractor-without-agreement",
            f"再委託先 {stakeholder.id} は個人データまたはクローズデータを扱いますが、推進主体までの契約が途切れています：{ja_link}",
            f"Subcontractor {stakeholder.id} handles personal or closed data, but the chain of agreements back to "
            f"the promoter is broken: {en_link}",
            elements,
        )


def _has_data_agreement(index: ModelIndex, a: str, b: str, as_of: dt.date) -> bool:
    for holder, other in ((a, b), (b, a)):
        for agreement in index.stakeholders[holder].agreements:
            if (
                agreement.kind == "data-handling"
                and agreement.with_ == other
                and (agreement.expires is None or agreement.expires >= as_of)
            ):
                return True
    return False


def components_without_owner(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Components nobody owns."""
    for component in index.model.components:
        if component.owner is None:
            yield _finding(
                index,
                "component-without-owner",
                f"構成要素 {component.id} に所有者が定められていません",
                f"Component {component.id} has no owner",
                [Element("component", component.id)],
                personal=component.id in index.personal_components,
            )


def unowned_requirements(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Applicable requirements for which nobody is responsible or accountable, one finding per requirement."""
    unowned: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        if target.status != "not-applicable" and not target.owned:
            unowned[target.requirement].append(target)
    for requirement, rows in unowned.items():
        names = ", ".join(t.scope_id for t in rows[:5]) + (f" … (+{len(rows) - 5})" if len(rows) > 5 else "")
        yield _finding(
            index,
            "unowned-requirement",
            f"{requirement} は {len(rows)} 件の対象で責任者が決まっていません：{names}",
            f"{requirement} has nobody responsible or accountable on {len(rows)} targets: {names}",
            [Element("requirement", requirement)] + [Element(t.scope, t.scope_id) for t in rows],
            personal=any(t.scope_id in index.personal_components for t in rows),
            requirements=(requirement,),
        )


def conflicting_accountability(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Two or more stakeholders accountable for one requirement on one target."""
    for target in targets:
        if len(target.accountable) > 1:
            who = ", ".join(target.accountable)
            yield _finding(
                index,
                "conflicting-accountability",
                f"{target.requirement}（{target.scope_id}）の説明責任者が複数います：{who}",
                f"{target.requirement} on {target.scope_id} has more than one accountable stakeholder: {who}",
                [Element("requirement", target.requirement), Element(target.scope, target.scope_id)]
                + [Element("stakeholder", s) for s in target.accountable],
                requirements=(target.requirement,),
                key=f"{target.requirement}@{target.scope}:{target.scope_id}",
            )


def no_incident_contacts(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Stakeholders that run components but name no incident contact."""
    for stakeholder in index.model.stakeholders:
        count = len(index.components_of.get(stakeholder.id, ()))
        if count and stakeholder.incident_contact is None:
            yield _finding(
                index,
                "no-incident-contact",
                f"{stakeholder.id} は {count} 個の構成要素を持ちますが、インシデント連絡先がありません",
                f"{stakeholder.id} runs {count} component{'s' if count > 1 else ''} but names no incident contact",
                [Element("stakeholder", stakeholder.id)],
            )


def overdue_requirements(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Status records past their due date and not yet met."""
    for record in index.model.statuses:
        if record.due and record.due < as_of and record.status not in DONE:
            scope = record.component or record.stakeholder or index.model.city.id
            elements = [Element("requirement", record.requirement)]
            if record.component:
                elements.append(Element("component", record.component))
            elif record.stakeholder:
                elements.append(Element("stakeholder", record.stakeholder))
            days = (as_of - record.due).days
            yield _finding(
                index,
                "overdue-requirement",
                f"{record.requirement}（{scope}）は期限 {record.due} を {days} 日過ぎています（状態：{record.status}）",
                f"{record.requirement} on {scope} is {days} days past its due date {record.due} "
                f"(status: {record.status})",
                elements,
                requirements=(record.requirement,),
                key=f"{record.requirement}@{scope}#{record.due}",
            )


def personal_data_without_consent_basis(index: ModelIndex, targets: list[Target], as_of: dt.date) -> Iterator[Finding]:
    """Services that use personal data without stating the legal basis (consent or another)."""
    for service in index.model.services:
        personal = [d for d in service.datasets if index.datasets[d].personal]
        if personal and service.consent_basis == "none":
            yield _finding(
                index,
                "personal-data-without-consent-basis",
                f"サービス {service.id} は個人データ（{', '.join(personal)}）を使いますが、同意などの根拠がありません",
                f"Service {service.id} uses personal data ({', '.join(personal)}) with no consent or other basis",
                [Element("service", service.id)] + [Element("dataset", d) for d in personal],
            )


CHECKS: tuple[Check, ...] = (
    unencrypted_flows,
    unauthenticated_flows,
    personal_data_in_open_datasets,
    subcontractors_without_agreement,
    components_without_owner,
    unowned_requirements,
    conflicting_accountability,
    no_incident_contacts,
    overdue_requirements,
    personal_data_without_consent_basis,
)
