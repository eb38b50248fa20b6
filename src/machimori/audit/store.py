"""Reading the stored log: entries, node hashes, proofs, roots and checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, or_, select

from machimori.audit import merkle
from machimori.audit.merkle import NodeId, ProofError, Range
from machimori.storage.raw import RawStatement
from machimori.storage.tables import audit_checkpoints, audit_entries, audit_head, audit_nodes

HEAD_ID = 1


@dataclass(frozen=True)
class Head:
    """The newest tree size and root hash in the database."""

    origin: str
    size: int
    root: bytes


@dataclass(frozen=True)
class StoredEntry:
    """One row of the log as stored."""

    index: int
    entry: str
    leaf_hash: bytes
    link_hash: bytes

    def value(self) -> Any:
        """The logged object."""
        return json.loads(self.entry)


class EntryNotFound(LookupError):
    """No entry has that index."""


def read_head(connection: Connection) -> Head | None:
    """The head row, or None before the log has been created."""
    row = connection.execute(
        select(audit_head.c.origin, audit_head.c.tree_size, audit_head.c.root_hash).where(audit_head.c.id == HEAD_ID)
    ).one_or_none()
    return None if row is None else Head(row.origin, row.tree_size, row.root_hash)


def read_hashes(connection: Connection, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
    """The stored hashes of the given nodes (level 0 from the entries); ProofError if one is missing."""
    found: dict[NodeId, bytes] = {}
    leaves = [index for level, index in ids if level == 0]
    inner = [(level, index) for level, index in ids if level > 0]
    cursor = connection.connection.cursor()
    try:
        if leaves:
            statement = _compiled(connection, "leaves", len(leaves))
            values = {f"i{n}": index for n, index in enumerate(leaves)}
            found.update(((0, idx), bytes(digest)) for idx, digest in statement.execute(cursor, values))
        if inner:
            statement = _compiled(connection, "nodes", len(inner))
            values = {}
            for n, (level, index) in enumerate(inner):
                values[f"l{n}"], values[f"i{n}"] = level, index
            found.update(((level, idx), bytes(digest)) for level, idx, digest in statement.execute(cursor, values))
    finally:
        cursor.close()
    missing = [node for node in ids if node not in found]
    if missing:
        raise ProofError(f"stored tree is missing node(s) {missing[:3]}")
    return found


_COMPILED: dict[tuple[str, str, int], RawStatement] = {}


def _compiled(connection: Connection, kind: str, count: int) -> RawStatement:
    """The lookup of count leaves or nodes, compiled once per dialect and count (proofs run at driver speed)."""
    key = (connection.dialect.name, kind, count)
    statement = _COMPILED.get(key)
    if statement is None:
        if kind == "leaves":
            query: Select[Any] = select(audit_entries.c.idx, audit_entries.c.leaf_hash).where(
                or_(*(audit_entries.c.idx == bindparam(f"i{n}") for n in range(count)))
            )
        else:
            query = node_query([(bindparam(f"l{n}"), bindparam(f"i{n}")) for n in range(count)])
        statement = _COMPILED[key] = RawStatement.compile(query, connection.dialect)
    return statement


def node_query(nodes: Sequence[tuple[Any, Any]]) -> Select[tuple[int, int, bytes]]:
    """One primary-key lookup per stored node.

    (level = ? AND idx = ?) OR … uses the key on SQLite and PostgreSQL alike; a row-value IN list
    would make SQLite scan the whole table.
    """
    table = audit_nodes.c
    return select(table.level, table.idx, table.hash).where(
        or_(*(and_(table.level == level, table.idx == index) for level, index in nodes))
    )


def range_hashes(connection: Connection, ranges: Sequence[Range]) -> list[bytes]:
    """MTH of each range, from O(log n) stored nodes fetched in at most two queries."""
    plans = [merkle.range_nodes(begin, end) for begin, end in ranges]
    hashes = read_hashes(connection, list({node for plan in plans for node in plan}))
    return [merkle.fold([hashes[node] for node in plan]) for plan in plans]


def _check_size(connection: Connection, size: int) -> None:
    head = read_head(connection)
    current = head.size if head else 0
    if size > current:
        raise ProofError(f"tree size {size} is larger than the log ({current} entries)")


def inclusion_proof(connection: Connection, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of entry index in the tree of this size."""
    ranges = merkle.inclusion_ranges(index, size)
    _check_size(connection, size)
    return range_hashes(connection, ranges)


def consistency_proof(connection: Connection, first: int, second: int) -> list[bytes]:
    """The RFC 9162 consistency proof from tree size first to second."""
    ranges = merkle.consistency_ranges(first, second)
    _check_size(connection, second)
    return range_hashes(connection, ranges)


def root_at(connection: Connection, size: int) -> bytes:
    """The root hash of the tree of this size."""
    if size < 0:
        raise ProofError("a tree size is not negative")
    _check_size(connection, size)
    if size == 0:
        return merkle.EMPTY_ROOT
    return range_hashes(connection, [(0, size)])[0]


def read_entry(connection: Connection, index: int) -> StoredEntry:
    """The entry at index; EntryNotFound if there is none."""
    row = connection.execute(select(audit_entries).where(audit_entries.c.idx == index)).one_or_none()
    if row is None:
        raise EntryNotFound(f"no audit entry {index}")
    return StoredEntry(row.idx, row.entry, row.leaf_hash, row.link_hash)


def iter_entries(
    connection: Connection, start: int = 0, end: int | None = None, page: int = 5000
) -> Iterator[StoredEntry]:
    """Every stored row from start (to end, exclusive) in index order, read page by page."""
    position = start
    while end is None or position < end:
        query = select(audit_entries).where(audit_entries.c.idx >= position).order_by(audit_entries.c.idx).limit(page)
        if end is not None:
            query = query.where(audit_entries.c.idx < end)
        rows = connection.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield StoredEntry(row.idx, row.entry, row.leaf_hash, row.link_hash)
        position = rows[-1].idx + 1


def stored_checkpoints(connection: Connection) -> list[str]:
    """Every signed checkpoint note kept in the database, oldest first."""
    rows = connection.execute(select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.tree_size))
    return [row.note for row in rows]
