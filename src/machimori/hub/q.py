"""The NGSI-LD query language (ETSI GS CIM 009 §4.9): `q=speed>50;(brand=="トヨタ"|brand=="Honda")`.

`parse_q` reads an expression into a tree of terms joined by `;` (and, binding tighter) and `|` (or),
with attribute names expanded by the request's @context; `Query.matches` tells whether an entity (as the
caller may see it) satisfies it. A term names an attribute path — `a`, `a.sub` (a sub-attribute or one of
observedAt/unitCode/datasetId/createdAt/modifiedAt), `a[key.key]` (inside a structured value) — and
optionally compares it: `==` (a value, a list `1,2,3` or a range `1..5`), `!=`, `<`, `<=`, `>`, `>=`,
`~=` / `!~=` (a regular expression). `!a` asks that an attribute be absent. An attribute with several
values (instances or list members) matches if any value does.

Expressions are bounded (length, terms, nesting) and patterns run under a time limit, so a query built
to be slow is refused rather than served.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import regex

from machimori.hub.entities import MAIN_MEMBER, Entity
from machimori.hub.errors import bad_request
from machimori.hub.jsonld import ActiveContext

MAX_LENGTH = 4096
MAX_TERMS = 64
MAX_DEPTH = 8
MAX_LIST = 100
PATTERN_SECONDS = 0.02
META = frozenset({"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt"})
ORDER_OPS = (">=", "<=", ">", "<")
OPERATORS = ("!~=", "~=", "==", "!=", *ORDER_OPS)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
_NAME_END = frozenset("=!<>~;|()[],.")


@dataclass(frozen=True)
class Path:
    """An attribute (expanded), then sub-attributes (expanded) or one metadata member, then keys in the value."""

    attribute: str
    members: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def is_top_level(self) -> bool:
        return not self.members and not self.keys


@dataclass(frozen=True)
class Range:
    low: Any
    high: Any


@dataclass(frozen=True)
class Term:
    """One comparison (op None: the attribute exists; "!": it does not)."""

    path: Path
    op: str | None = None
    values: tuple[Any, ...] = ()
    range: Range | None = None
    pattern: Any = None

    def matches(self, entity: Entity) -> bool:
        found = list(_targets(entity, self.path))
        if self.op is None:
            return bool(found)
        if self.op == "!":
            return not found
        if self.op == "~=":
            return any(_search(self.pattern, value) for value in found)
        if self.op == "!~=":
            return bool(found) and not any(_search(self.pattern, value) for value in found)
        if self.op == "!=":
            return bool(found) and not any(self._equals(value) for value in found)
        if self.op == "==":
            return any(self._equals(value) for value in found)
        return any(_compare(value, self.op, self.values[0]) for value in found)

    def _equals(self, value: Any) -> bool:
        if self.range is not None:
            return _compare(value, ">=", self.range.low) and _compare(value, "<=", self.range.high)
        return any(_same(value, literal) for literal in self.values)


@dataclass(frozen=True)
class All:
    """Every part matches (`;`)."""

    parts: tuple[Node, ...]

    def matches(self, entity: Entity) -> bool:
        return all(part.matches(entity) for part in self.parts)


@dataclass(frozen=True)
class Any_:
    """Some part matches (`|`)."""

    parts: tuple[Node, ...]

    def matches(self, entity: Entity) -> bool:
        return any(part.matches(entity) for part in self.parts)


Node = Term | All | Any_


@dataclass(frozen=True)
class Query:
    """A parsed q expression."""

    root: Node
    text: str

    def matches(self, entity: Entity) -> bool:
        """Whether the entity satisfies the expression."""
        return self.root.matches(entity)

    def terms(self) -> Iterator[Term]:
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Term):
                yield node
            else:
                stack.extend(node.parts)

    @property
    def attributes(self) -> frozenset[str]:
        """The (expanded) attributes the expression reads."""
        return frozenset(term.path.attribute for term in self.terms())


def parse_q(text: str, context: ActiveContext) -> Query:
    """The expression as a Query; BadRequestData (naming where) if it is not one."""
    if not text or len(text) > MAX_LENGTH:
        raise bad_request(f"q must be 1 to {MAX_LENGTH} characters / q の長さが不正です")
    parser = _Parser(text, context)
    root = parser.expression(0)
    if parser.position != len(text):
        parser.fail("unexpected text")
    return Query(root, text)


class _Parser:
    def __init__(self, text: str, context: ActiveContext) -> None:
        self.text = text
        self.context = context
        self.position = 0
        self.terms = 0

    def fail(self, what: str) -> NoReturn:
        raise bad_request(f"q: {what} at character {self.position + 1} of {self.text[:200]!r} / q の構文が不正です")

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def expression(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self.fail(f"more than {MAX_DEPTH} nested parentheses")
        alternatives = [self.conjunction(depth)]
        while self.peek() == "|":
            self.position += 1
            alternatives.append(self.conjunction(depth))
        return alternatives[0] if len(alternatives) == 1 else Any_(tuple(alternatives))

    def conjunction(self, depth: int) -> Node:
        parts = [self.factor(depth)]
        while self.peek() == ";":
            self.position += 1
            parts.append(self.factor(depth))
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def factor(self, depth: int) -> Node:
        if self.peek() == "(":
            self.position += 1
            inner = self.expression(depth + 1)
            if self.peek() != ")":
                self.fail("a '(' is not closed")
            self.position += 1
            return inner
        return self.term()

    def term(self) -> Term:
        self.terms += 1
        if self.terms > MAX_TERMS:
            self.fail(f"more than {MAX_TERMS} terms")
        if self.text.startswith("!", self.position) and not self.text.startswith("!=", self.position):
            self.position += 1
            return Term(self.path(), "!")
        path = self.path()
        op = next((op for op in OPERATORS if self.text.startswith(op, self.position)), None)
        if op is None:
            return Term(path)
        self.position += len(op)
        if op in ("~=", "!~="):
            return Term(path, op, pattern=self.pattern())
        raw = self.value_text()
        if op in ORDER_OPS:
            return Term(path, op, (self.literal(raw),))
        items = _split(raw, ",")
        if len(items) > MAX_LIST:
            self.fail(f"more than {MAX_LIST} values")
        if len(items) == 1:
            bounds = _split(raw, "..")
            if len(bounds) == 2:
                return Term(path, op, range=Range(self.literal(bounds[0]), self.literal(bounds[1])))
        return Term(path, op, tuple(self.literal(item) for item in items))

    def path(self) -> Path:
        names = [self.name()]
        while self.peek() == ".":
            self.position += 1
            names.append(self.name())
        keys: list[str] = []
        if self.peek() == "[":
            self.position += 1
            keys.append(self.name())
            while self.peek() == ".":
                self.position += 1
                keys.append(self.name())
            if self.peek() != "]":
                self.fail("a '[' is not closed")
            self.position += 1
        attribute = self.context.expand(names[0])
        last = len(names) - 2
        members = tuple(
            name if name in META and i == last else self.context.expand(name) for i, name in enumerate(names[1:])
        )
        return Path(attribute, members, tuple(keys))

    def name(self) -> str:
        start = self.position
        scheme = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", self.text[start:])
        if scheme:  # a full IRI: its dots belong to it
            self.position += scheme.end()
            while self.peek() and self.peek() not in "=!<>~;|()[],":
                self.position += 1
        else:
            while self.peek() and self.peek() not in _NAME_END and not self.peek().isspace():
                self.position += 1
        if self.position == start:
            self.fail("an attribute name is expected")
        return self.text[start : self.position]

    def value_text(self) -> str:
        start, quoted = self.position, False
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == '"' and (self.position == start or self.text[self.position - 1] != "\\"):
                quoted = not quoted
            elif not quoted and char in ";|)":
                break
            self.position += 1
        if quoted:
            self.fail("a quoted value is not closed")
        if self.position == start:
            self.fail("a value is expected")
        return self.text[start : self.position]

    def pattern(self) -> Any:
        start, depth = self.position, 0
        if self.peek() == '"':
            raw = self.value_text()
            source = self.literal(raw)
        else:
            while self.position < len(self.text):
                char = self.text[self.position]
                if char == "(":
                    depth += 1
                elif char == ")":
                    if depth == 0:
                        break
                    depth -= 1
                elif char == ";" and depth == 0:
                    break
                self.position += 1
            source = self.text[start : self.position]
        if not isinstance(source, str) or not source:
            self.fail("a pattern is expected")
        try:
            return regex.compile(str(source))
        except regex.error as error:
            self.fail(f"the pattern is not a regular expression ({error})")

    def literal(self, raw: str) -> Any:
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            try:
                return json.loads(raw)
            except ValueError:
                self.fail(f"{raw[:40]!r} is not a quoted string")
        if raw in ("true", "false"):
            return raw == "true"
        if _NUMBER.match(raw):
            return float(raw) if any(c in raw for c in ".eE") else int(raw)
        if _DATETIME.match(raw):
            return _when(raw) or raw
        if not raw or raw[0] in "=!<>~" or any(c.isspace() or c == '"' for c in raw):
            self.fail(f"{raw[:40]!r} is not a value")
        return raw  # a URI or a bare word


def _split(raw: str, separator: str) -> list[str]:
    parts, start, quoted, i = [], 0, False, 0
    while i < len(raw):
        if raw[i] == '"' and (i == 0 or raw[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and raw.startswith(separator, i):
            parts.append(raw[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(raw[start:])
    return parts


def _targets(entity: Entity, path: Path) -> Iterator[Any]:
    """The values the path points at in the entity (list members one by one)."""
    instances = entity.attributes.get(path.attribute, [])
    for i, member in enumerate(path.members):
        if member in META and i == len(path.members) - 1:
            yield from (instance[member] for instance in instances if member in instance)
            return
        instances = [sub for instance in instances for sub in instance.get(member, [])]
    for instance in instances:
        value = instance.get(MAIN_MEMBER.get(instance.get("type", ""), "value"))
        for key in path.keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, list):
            yield from (item for item in value if item is not None)
        elif value is not None:
            yield value


def _when(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dt.datetime):
        return "time"
    if isinstance(value, str):
        return "text"
    return "other"


def _comparable(value: Any, literal: Any) -> tuple[Any, Any] | None:
    """The value and the literal as one kind (a stored string read as a time if the literal is one)."""
    if _kind(literal) == "time" and isinstance(value, str):
        when = _when(value)
        return (when, literal) if when is not None else None
    return (value, literal) if _kind(value) == _kind(literal) and _kind(value) != "other" else None


def _same(value: Any, literal: Any) -> bool:
    pair = _comparable(value, literal)
    return pair is not None and pair[0] == pair[1]


def _compare(value: Any, op: str, literal: Any) -> bool:
    pair = _comparable(value, literal)
    if pair is None or _kind(literal) == "bool":
        return False
    left, right = pair
    return bool(
        left > right if op == ">" else left >= right if op == ">=" else left < right if op == "<" else left <= right
    )


def _search(pattern: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return pattern.search(value, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise bad_request("q: the pattern takes too long to match / パターンの照合に時間がかかりすぎます") from None
