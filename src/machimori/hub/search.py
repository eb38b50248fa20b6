"""Which entities a query selects (ETSI GS CIM 009 §5.7.2): by type, id, id pattern, attributes, q and geo.

The database narrows the candidates — every type of an entity and an index of its attribute values are
kept beside it (see store) — and the selection itself decides, on each entity as the caller may see it:
a q term or a geo-query on an attribute the caller may not read never matches, so a query cannot probe
hidden values. Candidates come in id order, a chunk at a time, so a page is found without reading the
whole table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import regex
from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, true

from machimori.hub.entities import Entity
from machimori.hub.errors import bad_request
from machimori.hub.geo import GeoQuery
from machimori.hub.q import ORDER_OPS, All, Any_, Node, Query, Term
from machimori.hub.store import MAX_INDEXED_TEXT
from machimori.storage import Database
from machimori.storage.tables import hub_attribute_values as values
from machimori.storage.tables import hub_entities as entities
from machimori.storage.tables import hub_entity_types as types_table

PATTERN_SECONDS = 0.02
MAX_CHUNK = 2000


@dataclass(frozen=True)
class EntitySelector:
    """Entities of some types (any of `types`, each a set all of which it must have), ids or an id pattern."""

    types: tuple[frozenset[str], ...] | None = None
    ids: frozenset[str] | None = None
    id_pattern: Any = None

    def matches(self, entity: Entity) -> bool:
        if self.types is not None and not any(wanted <= set(entity.types) for wanted in self.types):
            return False
        if self.ids is not None and entity.id not in self.ids:
            return False
        if self.id_pattern is not None:
            try:
                return self.id_pattern.search(entity.id, timeout=PATTERN_SECONDS) is not None
            except TimeoutError:
                raise bad_request(
                    "idPattern takes too long to match / idPattern の照合に時間がかかりすぎます"
                ) from None
        return True


_SCOPE_SEGMENT = regex.compile(r"^[\w\-]+$")


@dataclass(frozen=True)
class ScopeQuery:
    """A scope query (§4.19): alternatives (`,`) of terms that must all hold (`;`); a term is a path whose
    segment `+` stands for any one segment and whose last segment `#` for the path and all below it."""

    alternatives: tuple[tuple[tuple[str, ...], ...], ...]

    def matches(self, entity: Entity) -> bool:
        scopes = [tuple(scope.strip("/").split("/")) for scope in entity.scope or []]
        return any(all(any(_scope_term(term, s) for s in scopes) for term in terms) for terms in self.alternatives)


def _scope_term(term: tuple[str, ...], scope: tuple[str, ...]) -> bool:
    if term and term[-1] == "#":  # this path and everything below it (`/#`: any scope at all)
        term = term[:-1]
        if len(scope) < len(term):
            return False
        scope = scope[: len(term)]
    return len(term) == len(scope) and all(t in ("+", s) for t, s in zip(term, scope, strict=True))


def parse_scope_query(text: str) -> ScopeQuery:
    """A scopeQ; BadRequestData if it is not one."""
    alternatives = []
    for alternative in text.replace("(", "").replace(")", "").split(","):
        terms: list[tuple[str, ...]] = []
        for term in alternative.split(";"):
            segments = tuple(term.strip().removeprefix("/").split("/"))
            valid = term.strip().startswith("/") and all(
                _SCOPE_SEGMENT.match(segment) or segment == "+" or (segment == "#" and index == len(segments) - 1)
                for index, segment in enumerate(segments)
            )
            if not valid or len(terms) >= 100:
                raise bad_request(f"scopeQ: {term[:80]!r} is not a scope path / scopeQ が不正です")
            terms.append(segments)
        alternatives.append(tuple(terms))
    return ScopeQuery(tuple(alternatives))


@dataclass(frozen=True)
class Selection:
    """What a query asks for (attributes: those an entity must have one of)."""

    selectors: tuple[EntitySelector, ...] = ()
    attributes: frozenset[str] | None = None
    q: Query | None = None
    geo: GeoQuery | None = None
    scope: ScopeQuery | None = None

    def matches(self, entity: Entity) -> bool:
        """Whether the entity (as the caller may see it) is selected."""
        if self.selectors and not any(selector.matches(entity) for selector in self.selectors):
            return False
        if self.scope is not None and not self.scope.matches(entity):
            return False
        if self.attributes is not None and not self.attributes & set(entity.attributes):
            return False
        if self.q is not None and not self.q.matches(entity):
            return False
        return self.geo is None or self.geo.matches(entity)


def compile_id_pattern(pattern: str) -> Any:
    """An idPattern as a regular expression; BadRequestData if it is not one."""
    try:
        return regex.compile(pattern)
    except regex.error as error:
        raise bad_request(
            f"idPattern is not a regular expression: {error} / idPattern が正規表現ではありません"
        ) from None


def candidates(database: Database, tenant: str, selection: Selection, first: int = 200) -> Iterator[list[Entity]]:
    """Every stored entity the selection might match, in id order, in chunks — the first of `first`, then
    growing — so a page that the database answers exactly costs one small read (the selection still has
    to decide)."""
    condition = and_(entities.c.tenant == tenant, _prefilter(tenant, selection))
    after: str | None = None
    chunk = max(first, 1)
    while True:
        query = select(entities.c.body).where(condition)
        if after is not None:
            query = query.where(entities.c.id > after)
        with database.engine.connect() as connection:
            bodies = list(connection.execute(query.order_by(entities.c.id).limit(chunk)).scalars())
        if bodies:
            yield [Entity.from_json(body) for body in bodies]
        if len(bodies) < chunk:
            return
        after = bodies[-1]["id"]
        chunk = min(chunk * 4, MAX_CHUNK)


def _prefilter(tenant: str, selection: Selection) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if selection.selectors:
        parts.append(or_(*(_selector(tenant, selector) for selector in selection.selectors)))
    if selection.attributes is not None:
        parts.append(_has_value(tenant, values.c.attribute.in_(sorted(selection.attributes))))
    if selection.q is not None:
        parts.append(_node(tenant, selection.q.root))
    box = selection.geo.box if selection.geo is not None else None
    if box is not None:
        min_lon, min_lat, max_lon, max_lat = box
        parts.append(
            and_(
                entities.c.min_lon <= max_lon,
                entities.c.max_lon >= min_lon,
                entities.c.min_lat <= max_lat,
                entities.c.max_lat >= min_lat,
            )
        )
    return and_(true(), *parts)


def _selector(tenant: str, selector: EntitySelector) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if selector.types is not None:
        parts.append(or_(*(and_(*(_has_type(tenant, name) for name in sorted(wanted))) for wanted in selector.types)))
    if selector.ids is not None:
        parts.append(entities.c.id.in_(sorted(selector.ids)))
    return and_(true(), *parts)


def _has_type(tenant: str, name: str) -> ColumnElement[bool]:
    return exists().where(types_table.c.tenant == tenant, types_table.c.type == name, types_table.c.id == entities.c.id)


def _has_value(tenant: str, named: ColumnElement[bool], *value: ColumnElement[bool]) -> ColumnElement[bool]:
    """Some value of the entity's attribute (satisfying `value`, if given). A condition on the value is
    answered from the value index once (an uncorrelated IN, cheap when the condition selects); presence
    alone is probed entity by entity."""
    if value:
        return entities.c.id.in_(select(values.c.id).where(values.c.tenant == tenant, named, *value))
    return exists().where(values.c.tenant == tenant, values.c.id == entities.c.id, named)


def _node(tenant: str, node: Node) -> ColumnElement[bool]:
    if isinstance(node, All):
        return and_(*(_node(tenant, part) for part in node.parts))
    if isinstance(node, Any_):
        return or_(*(_node(tenant, part) for part in node.parts))
    return _term(tenant, node)


def _term(tenant: str, term: Term) -> ColumnElement[bool]:
    """A condition every entity the term matches satisfies (it may let more through: the term decides)."""
    named = values.c.attribute == term.path.attribute
    present = _has_value(tenant, named)
    if term.op == "!":  # absent as the caller sees it: perhaps stored but hidden, so the entity decides
        return true()
    if term.op is None or not term.path.is_top_level or term.op in ("~=", "!~="):
        return present
    literals = (term.range.low, term.range.high) if term.range is not None else term.values
    if not all(_indexable(literal) for literal in literals):
        return present
    if term.op == "!=":
        return and_(present, not_(_has_value(tenant, named, _equal_to(term.values))))
    if term.op == "==" and term.range is not None:
        low, high = term.range.low, term.range.high
        if not (_is_number(low) and _is_number(high)):
            return present
        return _has_value(tenant, named, values.c.number.between(float(low), float(high)))
    if term.op == "==":
        return _has_value(tenant, named, _equal_to(term.values))
    literal = term.values[0]
    if term.op in ORDER_OPS and _is_number(literal):
        column, bound = values.c.number, float(literal)
        compared = {">": column > bound, ">=": column >= bound, "<": column < bound, "<=": column <= bound}
        return _has_value(tenant, named, compared[term.op])
    return present


def _equal_to(literals: Sequence[Any]) -> ColumnElement[bool]:
    numbers = [float(v) for v in literals if _is_number(v)]
    texts = [v for v in literals if isinstance(v, str)]
    conditions = []
    if numbers:
        conditions.append(values.c.number.in_(numbers))
    if texts:
        conditions.append(values.c.text.in_(texts))
    return or_(false(), *conditions)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _indexable(literal: Any) -> bool:
    """Whether the value index holds what equality with this literal needs (numbers, short strings)."""
    return _is_number(literal) or (isinstance(literal, str) and len(literal) <= MAX_INDEXED_TEXT)
