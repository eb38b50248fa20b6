"""NGSI-LD subscriptions (ETSI GS CIM 009 §5.2.12, §5.8): checked on the way in, kept with expanded names.

A subscription keeps the @context it came with, so its notifications are compacted with it, and its q
with the context that q was written in. Members the broker does not implement (periodic notifications,
temporal, scope and language queries) are refused with OperationNotSupported rather than
silently ignored. A subscription is shown with the reader's context, with its status and delivery figures.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from machimori.hub.entities import is_uri, parse_datetime
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request
from machimori.hub.geo import parse_geo_query
from machimori.hub.jsonld import ActiveContext, Contexts, ContextValue
from machimori.hub.q import parse_q

TRIGGERS = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
FORMATS = ("normalized", "keyValues", "concise")
ACCEPTS = ("application/json", "application/ld+json")
MAX_ENDPOINT_LENGTH = 2048
MAX_PATTERN_LENGTH = 256
MAX_SELECTORS = 100
MAX_NAMES = 100
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64}$")
_RESERVED_HEADERS = frozenset(
    {"host", "content-type", "content-length", "transfer-encoding", "connection", "link", "ngsild-tenant"}
)
_READ_ONLY = frozenset({"status", "createdAt", "modifiedAt", "timesSent", "timesFailed"})
_UNSUPPORTED = ("timeInterval", "temporalQ", "scopeQ", "lang", "csf", "datasetId", "expandValues", "contextSourceInfo")
_NOTIFICATION_READ_ONLY = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
)
_KNOWN = frozenset(
    {
        "id",
        "type",
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "notificationTrigger",
        "q",
        "geoQ",
        "isActive",
        "notification",
        "expiresAt",
        "throttling",
        "jsonldContext",
    }
)


@dataclass(frozen=True)
class EntitySelector:
    """Which entities a subscription is about: a type (expanded), and an id or an id pattern."""

    type: str
    id: str | None = None
    id_pattern: str | None = None

    def selects(self, entity_id: str, types: list[str]) -> bool:
        """Whether an entity with this id and these expanded types is selected."""
        if self.type not in types:
            return False
        if self.id is not None:
            return entity_id == self.id
        return self.id_pattern is None or re.fullmatch(self.id_pattern, entity_id) is not None


@dataclass(frozen=True)
class GeoQuery:
    """A geo-query: a GeoJSON geometry, a relation (near;maxDistance==…) and the GeoProperty it applies to."""

    geometry: str
    coordinates: Any
    georel: str
    geoproperty: str  # expanded


@dataclass(frozen=True)
class Endpoint:
    """Where notifications go, in which media type, with which extra headers."""

    uri: str
    accept: str = "application/json"
    receiver_info: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Subscription:
    """A subscription's definition, names expanded."""

    id: str
    endpoint: Endpoint
    context: ContextValue = None
    entities: tuple[EntitySelector, ...] = ()
    watched: tuple[str, ...] | None = None
    triggers: tuple[str, ...] = DEFAULT_TRIGGERS
    q: str | None = None
    q_context: ContextValue = None
    geo: GeoQuery | None = None
    attributes: tuple[str, ...] | None = None
    format: str = "normalized"
    sys_attrs: bool = False
    show_changes: bool = False
    expires_at: dt.datetime | None = None
    throttling: float | None = None
    is_active: bool = True
    name: str | None = None
    description: str | None = None
    jsonld_context: str | None = None

    def status(self, now: dt.datetime) -> str:
        """active, paused (isActive false) or expired (expiresAt passed)."""
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active" if self.is_active else "paused"

    def notification_context(self) -> ContextValue:
        """The @context notifications are compacted with: jsonldContext if given, else the subscription's."""
        return self.jsonld_context if self.jsonld_context is not None else self.context

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "id": self.id,
            "endpoint": {
                "uri": self.endpoint.uri,
                "accept": self.endpoint.accept,
                "receiverInfo": [list(pair) for pair in self.endpoint.receiver_info],
            },
            "context": self.context,
            "entities": [{"type": s.type, "id": s.id, "idPattern": s.id_pattern} for s in self.entities],
            "watched": None if self.watched is None else list(self.watched),
            "triggers": list(self.triggers),
            "q": self.q,
            "qContext": self.q_context,
            "geo": None
            if self.geo is None
            else {
                "geometry": self.geo.geometry,
                "coordinates": self.geo.coordinates,
                "georel": self.geo.georel,
                "geoproperty": self.geo.geoproperty,
            },
            "attributes": None if self.attributes is None else list(self.attributes),
            "format": self.format,
            "sysAttrs": self.sys_attrs,
            "showChanges": self.show_changes,
            "expiresAt": None if self.expires_at is None else self.expires_at.isoformat(),
            "throttling": self.throttling,
            "isActive": self.is_active,
            "name": self.name,
            "description": self.description,
            "jsonldContext": self.jsonld_context,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Subscription:
        endpoint = body["endpoint"]
        geo = body.get("geo")
        return cls(
            id=body["id"],
            endpoint=Endpoint(
                endpoint["uri"], endpoint["accept"], tuple((str(k), str(v)) for k, v in endpoint["receiverInfo"])
            ),
            context=body.get("context"),
            entities=tuple(EntitySelector(s["type"], s.get("id"), s.get("idPattern")) for s in body["entities"]),
            watched=None if body.get("watched") is None else tuple(body["watched"]),
            triggers=tuple(body["triggers"]),
            q=body.get("q"),
            q_context=body.get("qContext"),
            geo=None
            if geo is None
            else GeoQuery(geo["geometry"], geo["coordinates"], geo["georel"], geo["geoproperty"]),
            attributes=None if body.get("attributes") is None else tuple(body["attributes"]),
            format=body["format"],
            sys_attrs=bool(body.get("sysAttrs")),
            show_changes=bool(body.get("showChanges")),
            expires_at=None if body.get("expiresAt") is None else dt.datetime.fromisoformat(body["expiresAt"]),
            throttling=body.get("throttling"),
            is_active=bool(body["isActive"]),
            name=body.get("name"),
            description=body.get("description"),
            jsonld_context=body.get("jsonldContext"),
        )


@dataclass(frozen=True)
class Delivery:
    """How notifications of a subscription went so far."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: dt.datetime | None = None
    last_success: dt.datetime | None = None
    last_failure: dt.datetime | None = None


def check_endpoint_uri(uri: object) -> str:
    """A notification endpoint: an absolute http(s) URL without credentials or fragment; BadRequestData else."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_ENDPOINT_LENGTH:
        raise bad_request(
            f"notification.endpoint.uri must be a URL of at most {MAX_ENDPOINT_LENGTH} characters"
            " / 通知先の URL が必要です"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise bad_request("notification.endpoint.uri must not contain spaces / 通知先の URL に空白は使えません")
    try:
        url = httpx.URL(uri)  # the parser that sends, so what is checked is where it goes
    except httpx.InvalidURL:
        raise bad_request(
            f"notification.endpoint.uri is not a URL: {uri[:80]!r} / 通知先が URL ではありません"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise bad_request(
            "notification.endpoint.uri must be an http:// or https:// URL (other schemes are not supported)"
            " / 通知先は http:// か https:// の URL にしてください"
        )
    if url.userinfo:
        raise bad_request(
            "notification.endpoint.uri must not carry credentials / 通知先の URL に認証情報は含められません"
        )
    if "#" in uri:
        raise bad_request(
            "notification.endpoint.uri must not have a fragment / 通知先の URL にフラグメントは使えません"
        )
    return uri


def parse_subscription(
    payload: object, context: ContextValue, contexts: Contexts, *, now: dt.datetime, new_id: Callable[[], str]
) -> Subscription:
    """A subscription from a request body (its @context already taken out); BadRequestData on any fault."""
    if not isinstance(payload, dict) or not payload:
        raise bad_request("a subscription must be a non-empty JSON object / サブスクリプションは JSON オブジェクトです")
    if payload.get("type") != "Subscription":
        raise bad_request('type must be "Subscription" / type は "Subscription" です')
    subscription_id = payload.get("id", new_id())
    if not is_uri(subscription_id):
        raise bad_request(f"id must be a URI, got {subscription_id!r} / id は URI でなければなりません")
    if "notification" not in payload:
        raise bad_request("notification is required / notification が必要です")
    active = contexts.active(context)
    base = Subscription(str(subscription_id), Endpoint(""), context=context)
    subscription = _apply(base, payload, context, active, contexts, now=now, creating=True)
    return subscription


def patch_subscription(
    subscription: Subscription, fragment: object, context: ContextValue, contexts: Contexts, *, now: dt.datetime
) -> Subscription:
    """The subscription with the fragment's members replacing its own (notification merged member by member)."""
    if not isinstance(fragment, dict) or not fragment:
        raise bad_request("a subscription fragment must be a non-empty JSON object / 更新内容が空です")
    if "id" in fragment and fragment["id"] != subscription.id:
        raise bad_request("a subscription's id cannot be changed / id は変更できません")
    if "type" in fragment and fragment["type"] != "Subscription":
        raise bad_request('type must be "Subscription" / type は "Subscription" です')
    return _apply(subscription, fragment, context, contexts.active(context), contexts, now=now, creating=False)


def _apply(
    base: Subscription,
    payload: dict[str, Any],
    context: ContextValue,
    active: ActiveContext,
    contexts: Contexts,
    *,
    now: dt.datetime,
    creating: bool,
) -> Subscription:
    for member in payload:
        if member in _UNSUPPORTED:
            raise NgsiLdError(
                ErrorType.OperationNotSupported,
                f"{member} is not supported by this broker / {member} には対応していません",
            )
        if member not in _KNOWN and member not in _READ_ONLY:
            raise bad_request(f"{member[:80]!r} is not a member of a subscription / 不明な項目です")
    changes: dict[str, Any] = {}
    if "entities" in payload:
        changes["entities"] = _entities(payload["entities"], active)
    if "watchedAttributes" in payload:
        changes["watched"] = _names(payload["watchedAttributes"], "watchedAttributes", active)
    if "notificationTrigger" in payload:
        changes["triggers"] = _triggers(payload["notificationTrigger"])
    if "q" in payload:
        text = payload["q"]
        if not isinstance(text, str):
            raise bad_request("q must be a string / q は文字列です")
        parse_q(text, active)
        changes["q"], changes["q_context"] = text, context
    if "geoQ" in payload:
        changes["geo"] = _geo(payload["geoQ"], active)
    if "isActive" in payload:
        if not isinstance(payload["isActive"], bool):
            raise bad_request("isActive must be true or false / isActive は真偽値です")
        changes["is_active"] = payload["isActive"]
    if "expiresAt" in payload:
        expires = parse_datetime(payload["expiresAt"], "expiresAt")
        if expires <= now:
            raise bad_request("expiresAt must be in the future / expiresAt は未来の日時にしてください")
        changes["expires_at"] = expires
    if "throttling" in payload:
        changes["throttling"] = _throttling(payload["throttling"])
    for member, attribute in (("subscriptionName", "name"), ("description", "description")):
        if member in payload:
            if not isinstance(payload[member], str) or len(payload[member]) > 1024:
                raise bad_request(f"{member} must be a string of at most 1024 characters / {member} は文字列です")
            changes[attribute] = payload[member]
    if "jsonldContext" in payload:
        url = payload["jsonldContext"]
        if not is_uri(url):
            raise bad_request("jsonldContext must be a URI / jsonldContext は URI です")
        contexts.active(str(url))  # LdContextNotAvailable now rather than at every notification
        changes["jsonld_context"] = str(url)
    if "notification" in payload:
        changes.update(_notification(payload["notification"], active, base, creating=creating))
    result = replace(base, **changes)
    if not result.entities and not result.watched:
        raise bad_request("entities or watchedAttributes is required / entities か watchedAttributes が必要です")
    return result


def _entities(value: object, active: ActiveContext) -> tuple[EntitySelector, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_SELECTORS:
        raise bad_request(f"entities must be a list of 1 to {MAX_SELECTORS} selectors / entities が不正です")
    selectors = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not item["type"]:
            raise bad_request("each of entities needs a type / entities の各要素に type が必要です")
        unknown = set(item) - {"id", "idPattern", "type"}
        if unknown:
            raise bad_request(f"entities: unknown members {sorted(unknown)} / entities に不明な項目があります")
        entity_id, pattern = item.get("id"), item.get("idPattern")
        if entity_id is not None and not is_uri(entity_id):
            raise bad_request(f"entities: id must be a URI, got {entity_id!r} / id は URI です")
        if pattern is not None:
            _check_pattern(pattern)
        selectors.append(EntitySelector(active.expand(item["type"]), entity_id, None if entity_id else pattern))
    return tuple(selectors)


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise bad_request(f"idPattern must be a regular expression of at most {MAX_PATTERN_LENGTH} characters")
    try:
        re.compile(pattern)
    except re.error:
        raise bad_request(f"idPattern {pattern[:80]!r} is not a regular expression / idPattern が不正です") from None


def _names(value: object, member: str, active: ActiveContext) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_NAMES
        or not all(isinstance(name, str) and name for name in value)
    ):
        raise bad_request(f"{member} must be a list of 1 to {MAX_NAMES} names / {member} は名前の一覧です")
    return tuple(dict.fromkeys(active.expand(name) for name in value))


def _triggers(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(item in TRIGGERS for item in value):
        raise bad_request(
            f"notificationTrigger must be a list of {', '.join(TRIGGERS)} / notificationTrigger の値が不正です"
        )
    return tuple(dict.fromkeys(str(item) for item in value))


def _throttling(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 31_536_000:
        raise bad_request("throttling must be a positive number of seconds / throttling は正の秒数です")
    return float(value)


def _geo(value: object, active: ActiveContext) -> GeoQuery:
    if not isinstance(value, dict):
        raise bad_request("geoQ must be an object / geoQ はオブジェクトです")
    unknown = set(value) - {"geometry", "coordinates", "georel", "geoproperty"}
    if unknown:
        raise bad_request(f"geoQ: unknown members {sorted(unknown)} / geoQ に不明な項目があります")
    geometry, georel, coordinates = value.get("geometry"), value.get("georel"), value.get("coordinates")
    prop = value.get("geoproperty", "location")
    if not all(isinstance(item, str) for item in (geometry, georel, prop)) or coordinates is None:
        raise bad_request("geoQ needs geometry, coordinates and georel / geoQ の項目が足りません")
    if isinstance(coordinates, str):  # the text form of the coordinates is allowed too
        try:
            coordinates = json.loads(coordinates)
        except ValueError:
            raise bad_request("geoQ.coordinates is not a JSON array / geoQ.coordinates が不正です") from None
    parsed = parse_geo_query(str(georel), str(geometry), coordinates, str(prop), active)
    assert parsed is not None
    return GeoQuery(str(geometry), coordinates, str(georel), parsed.geoproperty)


def _notification(value: object, active: ActiveContext, base: Subscription, *, creating: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("notification must be an object / notification はオブジェクトです")
    known = {"attributes", "format", "endpoint", "sysAttrs", "showChanges"} | _NOTIFICATION_READ_ONLY
    unknown = set(value) - known
    if unknown:
        raise bad_request(f"notification: unknown members {sorted(unknown)} / notification に不明な項目があります")
    changes: dict[str, Any] = {}
    if "attributes" in value:
        changes["attributes"] = _names(value["attributes"], "notification.attributes", active)
    if "format" in value:
        if value["format"] not in FORMATS:
            raise bad_request(f"notification.format must be one of {', '.join(FORMATS)} / format が不正です")
        changes["format"] = value["format"]
    if "sysAttrs" in value:
        if not isinstance(value["sysAttrs"], bool):
            raise bad_request("notification.sysAttrs must be true or false / sysAttrs は真偽値です")
        changes["sys_attrs"] = value["sysAttrs"]
    if "showChanges" in value:
        if not isinstance(value["showChanges"], bool):
            raise bad_request("notification.showChanges must be true or false / showChanges は真偽値です")
        changes["show_changes"] = value["showChanges"]
    if "endpoint" in value:
        changes["endpoint"] = _endpoint(value["endpoint"])
    elif creating:
        raise bad_request("notification.endpoint is required / notification.endpoint が必要です")
    return changes


def _endpoint(value: object) -> Endpoint:
    if not isinstance(value, dict):
        raise bad_request("notification.endpoint must be an object / endpoint はオブジェクトです")
    unknown = set(value) - {"uri", "accept", "receiverInfo", "notifierInfo"}
    if unknown:
        raise bad_request(f"notification.endpoint: unknown members {sorted(unknown)} / endpoint に不明な項目があります")
    if value.get("notifierInfo"):
        raise NgsiLdError(ErrorType.OperationNotSupported, "notifierInfo (MQTT) is not supported / 未対応です")
    accept = value.get("accept", "application/json")
    if accept not in ACCEPTS:
        raise bad_request(f"notification.endpoint.accept must be one of {', '.join(ACCEPTS)} / accept が不正です")
    return Endpoint(check_endpoint_uri(value.get("uri")), str(accept), _receiver_info(value.get("receiverInfo", [])))


def _receiver_info(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or len(value) > 16:
        raise bad_request("receiverInfo must be a list of at most 16 {key, value} / receiverInfo が不正です")
    pairs = []
    for item in value:
        key = item.get("key") if isinstance(item, dict) else None
        text = item.get("value") if isinstance(item, dict) else None
        if not isinstance(key, str) or not _HEADER_NAME.match(key) or key.lower() in _RESERVED_HEADERS:
            raise bad_request(f"receiverInfo: {key!r} cannot be sent as a header / ヘッダー名が不正です")
        if not isinstance(text, str) or len(text) > 1024 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            raise bad_request(f"receiverInfo: the value of {key} is not a header value / ヘッダー値が不正です")
        pairs.append((key, text))
    return tuple(pairs)


def render_subscription(
    subscription: Subscription, delivery: Delivery, context: ActiveContext, *, now: dt.datetime
) -> dict[str, Any]:
    """The subscription as a client reads it: names compacted with its context, with status and figures."""
    body: dict[str, Any] = {"id": subscription.id, "type": "Subscription"}
    if subscription.name is not None:
        body["subscriptionName"] = subscription.name
    if subscription.description is not None:
        body["description"] = subscription.description
    if subscription.entities:
        body["entities"] = [_selector(s, context) for s in subscription.entities]
    if subscription.watched is not None:
        body["watchedAttributes"] = [context.compact(name) for name in subscription.watched]
    body["notificationTrigger"] = list(subscription.triggers)
    if subscription.q is not None:
        body["q"] = subscription.q
    if subscription.geo is not None:
        geo = subscription.geo
        body["geoQ"] = {
            "geometry": geo.geometry,
            "coordinates": geo.coordinates,
            "georel": geo.georel,
            "geoproperty": context.compact(geo.geoproperty),
        }
    body["isActive"] = subscription.is_active
    body["status"] = subscription.status(now)
    if subscription.expires_at is not None:
        body["expiresAt"] = _time(subscription.expires_at)
    if subscription.throttling is not None:
        body["throttling"] = subscription.throttling
    if subscription.jsonld_context is not None:
        body["jsonldContext"] = subscription.jsonld_context
    body["notification"] = _rendered_notification(subscription, delivery, context)
    return body


def _selector(selector: EntitySelector, context: ActiveContext) -> dict[str, Any]:
    shown: dict[str, Any] = {"type": context.compact(selector.type)}
    if selector.id is not None:
        shown["id"] = selector.id
    if selector.id_pattern is not None:
        shown["idPattern"] = selector.id_pattern
    return shown


def _rendered_notification(subscription: Subscription, delivery: Delivery, context: ActiveContext) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"uri": subscription.endpoint.uri, "accept": subscription.endpoint.accept}
    if subscription.endpoint.receiver_info:
        endpoint["receiverInfo"] = [{"key": k, "value": v} for k, v in subscription.endpoint.receiver_info]
    shown: dict[str, Any] = {"format": subscription.format, "endpoint": endpoint}
    if subscription.attributes is not None:
        shown["attributes"] = [context.compact(name) for name in subscription.attributes]
    if subscription.sys_attrs:
        shown["sysAttrs"] = True
    if subscription.show_changes:
        shown["showChanges"] = True
    shown["timesSent"] = delivery.times_sent
    shown["timesFailed"] = delivery.times_failed
    for member, moment in (
        ("lastNotification", delivery.last_notification),
        ("lastSuccess", delivery.last_success),
        ("lastFailure", delivery.last_failure),
    ):
        if moment is not None:
            shown[member] = _time(moment)
    if delivery.last_success is not None or delivery.last_failure is not None:
        failed = delivery.last_failure is not None and (
            delivery.last_success is None or delivery.last_failure > delivery.last_success
        )
        shown["status"] = "failed" if failed else "ok"
    return shown


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
