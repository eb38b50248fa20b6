"""decide(): permit or deny with obligations and a reason, cached until a role, policy or consent changes.

The rules, in order (the first that applies decides):
  -. granting a role: nobody grants themselves one, separated duties stay separated (CPS.AC-5), and
     only an administrator of the organisation at AAL2, or the operator at the server's console, grants;
  -. platform operations by API tokens: each operation names the token roles that may do it (admin all);
  0. a target may demand an authentication (AAL) and, of people, an identity assurance level (IAL);
  1. reading open data is permitted to anyone;
  2. administrative actions need the admin role in the resource's organisation and AAL2 or higher;
  3. a resident may read their own personal data;
  4. personal data is read only by a service, for a purpose it declares, that the resident consented
     to and has not withdrawn (with a token: one that has the personal:read scope and, if a resident
     authorized it, hers); each permit carries the obligation to audit-log the access;
  5. writing non-personal data: the owning organisation only;
     closed data: the owning organisation's systems, and its staff with a reader or operator role;
  6. limited data: the owning organisation, or a reader role granted in it;
  7. otherwise deny.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from machimori.clock import utc_now
from machimori.consent.records import ConsentState

PERSONAL_SCOPE = "personal:read"
PLATFORM = "platform"
# Which API-token roles may do each platform operation (the admin role may do all of them).
PLATFORM_OPERATIONS: dict[str, frozenset[str]] = {
    "audit.append": frozenset({"recorder"}),
    "audit.read": frozenset({"auditor", "recorder"}),
    "audit.export": frozenset({"auditor"}),
    "events.read": frozenset({"auditor"}),
    "tokens.manage": frozenset(),
    "devices.read": frozenset({"auditor"}),
    "devices.manage": frozenset(),  # register, rotate keys, quarantine, retire
    "devices.release": frozenset(),  # let a quarantined device send again: the admin only, always logged
    "flows.submit": frozenset({"sensor"}),  # network sensors hand flow records to detection
    "detections.read": frozenset({"auditor"}),
}
# Roles one person never holds together (in any organisation).
SEPARATED_DUTIES = (frozenset({"admin", "auditor"}), frozenset({"security-admin", "auditor"}))
ConsentLookup = Callable[[str, str, str], tuple[ConsentState, dt.datetime | None]]
ConsentVersion = Callable[[str], int]
_FOREVER = float("inf")


class Action(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"


class DataType(StrEnum):
    """The guideline's data types."""

    open = "open"
    limited = "limited"
    closed = "closed"
    personal = "personal"


@dataclass(frozen=True)
class Subject:
    """Who asks: an account or service client, its organisation, roles as (organisation, role), AAL and IAL."""

    id: str
    kind: str
    org: str | None = None
    roles: frozenset[tuple[str, str]] = frozenset()
    aal: int = 1
    ial: int = 0


@dataclass(frozen=True)
class Target:
    """What is asked about: a dataset or entity, its data type, owning organisation, resident if personal,
    and the assurance it demands of whoever touches it (a policy may require an AAL or an IAL)."""

    id: str
    data_type: DataType
    org: str | None = None
    resident: str | None = None
    min_aal: int = 0
    min_ial: int = 0


@dataclass(frozen=True)
class RoleGrant:
    """A role about to be granted: to whom, which, and the roles the grantee already holds."""

    grantee: str
    role: str
    held: frozenset[str]


@dataclass(frozen=True)
class Context:
    """What the request says beside who asks: its declared purpose (a purpose IRI), and, for a request
    made with an OAuth token, the token's scopes and the resident on whose behalf it was issued."""

    purpose: str | None = None
    scopes: frozenset[str] | None = None
    on_behalf_of: str | None = None
    role_grant: RoleGrant | None = None


@dataclass(frozen=True)
class Decision:
    """The answer, with the rule that gave it, in words, and what the caller must do if permitted."""

    permit: bool
    rule: str
    reason_ja: str
    reason_en: str
    obligations: tuple[str, ...] = ()

    def explain(self) -> str:
        verdict = "permit" if self.permit else "deny"
        return f"{verdict} ({self.rule}): {self.reason_ja} / {self.reason_en}"


def _permit(rule: str, ja: str, en: str, *obligations: str) -> Decision:
    return Decision(True, rule, ja, en, obligations)


def _deny(rule: str, ja: str, en: str) -> Decision:
    return Decision(False, rule, ja, en)


@dataclass
class _Cache:
    entries: dict[tuple[object, ...], tuple[int, int, float, Decision]] = field(default_factory=dict)
    limit: int = 200_000


class DecisionPoint:
    """The policy decision point; decisions are cached and dropped at once when what they rest on changes."""

    def __init__(
        self, consent: ConsentLookup, consent_version: ConsentVersion, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self._consent = consent
        self._clock = clock
        self._consent_version = consent_version
        self._generation = 0
        self._cache = _Cache()
        self._lock = threading.Lock()

    def policy_changed(self) -> None:
        """Forget every cached decision (a role or the policy changed)."""
        with self._lock:
            self._generation += 1
            self._cache.entries.clear()

    def decide(self, subject: Subject, action: Action, target: Target, context: Context) -> Decision:
        """Permit or deny, with the reason; served from the cache while nothing it rests on changed."""
        key = (subject, action, target, context)
        version = self._consent_version(target.resident) if target.resident else 0
        cached = self._cache.entries.get(key)
        if (
            cached is not None
            and cached[0] == self._generation
            and cached[1] == version
            and (cached[2] == _FOREVER or self._clock().timestamp() < cached[2])
        ):
            return cached[3]
        generation = self._generation
        decision, valid_until = self._evaluate(subject, action, target, context)
        if len(self._cache.entries) >= self._cache.limit:
            self._cache.entries.clear()
        self._cache.entries[key] = (generation, version, valid_until, decision)
        return decision

    def _evaluate(self, subject: Subject, action: Action, target: Target, context: Context) -> tuple[Decision, float]:
        """The decision and until when it holds (a timestamp; infinity unless a consent expires)."""
        if context.role_grant is not None:
            return _role_grant(subject, target, context.role_grant), _FOREVER
        if target.org == PLATFORM and subject.kind == "api-token":
            return _platform_operation(subject, target), _FOREVER
        if subject.aal < target.min_aal:
            return _deny(
                "aal-required",
                f"AAL{target.min_aal} 以上の認証が必要です",
                f"AAL{target.min_aal} or higher is required",
            ), _FOREVER
        if subject.kind != "service" and subject.ial < target.min_ial:
            return _deny(
                "ial-required",
                f"IAL{target.min_ial} 以上の身元確認が必要です",
                f"identity proven at IAL{target.min_ial} is required",
            ), _FOREVER
        if target.data_type is DataType.personal and action is not Action.admin:
            return self._personal(subject, action, target, context)
        return _rules(subject, action, target), _FOREVER

    def _personal(self, subject: Subject, action: Action, target: Target, context: Context) -> tuple[Decision, float]:
        if subject.kind == "resident" and subject.id == target.resident and action is Action.read:
            return _permit("own-data", "本人のデータです", "the resident's own data"), _FOREVER
        if action is Action.write and target.org is not None and subject.org == target.org:
            return _permit(
                "owner-write", "所有組織が書き込みます", "the owning organisation writes its data", "audit-log"
            ), _FOREVER
        if subject.kind != "service" or action is not Action.read:
            return _deny(
                "personal-service-only",
                "個人データはサービスだけが目的を示して読めます",
                "personal data is read only by services that declare a purpose",
            ), _FOREVER
        if not context.purpose:
            return _deny("purpose-missing", "利用目的が示されていません", "no purpose was declared"), _FOREVER
        if context.scopes is not None and PERSONAL_SCOPE not in context.scopes:
            return _deny(
                "scope-missing",
                f"トークンに {PERSONAL_SCOPE} の権限がありません",
                f"the token lacks the {PERSONAL_SCOPE} scope",
            ), _FOREVER
        if context.on_behalf_of is not None and context.on_behalf_of != target.resident:
            return _deny(
                "other-resident",
                "このトークンは別の住民の許可で発行されました",
                "the token was authorized by another resident",
            ), _FOREVER
        if target.resident is None:
            return _deny(
                "resident-unknown",
                "誰のデータか分からない個人データは出せません",
                "personal data whose resident is not known is not released",
            ), _FOREVER
        state, expires = self._consent(target.resident, subject.id, context.purpose)
        if state is not ConsentState.given:
            return _deny(
                f"consent-{state.value}",
                _CONSENT_JA.get(state, "この目的への同意がありません"),
                f"the resident's consent for this purpose is {state.value}",
            ), _FOREVER
        permit = _permit(
            "consent-given", "本人がこの目的に同意しています", "the resident consented to this purpose", "audit-log"
        )
        return permit, expires.timestamp() if expires is not None else _FOREVER  # a cached permit ends with the consent


def _rules(subject: Subject, action: Action, target: Target) -> Decision:
    if target.data_type is DataType.open and action is Action.read:
        return _permit("open-data", "オープンデータは誰でも読めます", "open data may be read by anyone")
    if action is Action.admin:
        if (target.org, "admin") not in subject.roles:
            return _deny("admin-role", "管理者権限がありません", "the admin role in this organisation is required")
        if subject.aal < 2:
            return _deny("aal2", "多要素認証 (AAL2) が必要です", "privileged actions need AAL2 (a second factor)")
        return _permit("admin", "管理者の操作です", "an administrator's action", "audit-log")
    if action is Action.write:
        if target.org is not None and subject.org == target.org:
            return _permit("owner-write", "所有組織が書き込みます", "the owning organisation writes its data")
        return _deny("owner-write", "書き込めるのは所有組織だけです", "only the owning organisation writes this data")
    if target.data_type is DataType.closed:
        staff = any((target.org, r) in subject.roles for r in ("reader", "operator"))
        if target.org is not None and subject.org == target.org and (staff or subject.kind == "service"):
            return _permit(
                "closed-owner", "所有組織の担当者かシステムです", "staff or a system of the owning organisation"
            )
        return _deny("closed", "非公開データです", "closed data of another organisation")
    if target.data_type is DataType.limited:
        if subject.org == target.org or (target.org, "reader") in subject.roles:
            return _permit("limited-member", "利用が許可された組織です", "an organisation allowed to use it")
        return _deny("limited", "限定公開データの利用許可がありません", "not allowed to use this limited data")
    return _deny("default", "許可する規則がありません", "no rule permits this")


def _role_grant(subject: Subject, target: Target, grant: RoleGrant) -> Decision:
    if subject.id == grant.grantee:
        return _deny("self-grant", "自分自身に権限は付与できません", "nobody grants a role to themselves")
    for duties in SEPARATED_DUTIES:
        if grant.role in duties and any(held in duties and held != grant.role for held in grant.held):
            return _deny(
                "separation-of-duties",
                f"{grant.role} は既に持つ権限と両立しません (職務の分離)",
                f"{grant.role} conflicts with a role already held (separation of duties)",
            )
    if subject.kind == "operator":
        return _permit(
            "operator-grant", "サーバの運用者による付与です", "granted by the operator at the console", "audit-log"
        )
    return _rules(subject, Action.admin, target)


def _platform_operation(subject: Subject, target: Target) -> Decision:
    operation = target.id.removeprefix(PLATFORM + ":")
    allowed = PLATFORM_OPERATIONS.get(operation, frozenset())
    if (PLATFORM, "admin") in subject.roles or any((PLATFORM, role) in subject.roles for role in allowed):
        return _permit("platform-role", "この操作を許されたトークンです", f"the token's role may {operation}")
    return _deny("platform-role", "この操作の権限がありません", f"the token's role may not {operation}")


_CONSENT_JA = {
    ConsentState.withdrawn: "本人が同意を撤回しました",
    ConsentState.expired: "同意の期限が切れています",
    ConsentState.refused: "本人が同意を拒否しました",
}
