"""The export file of a log (JSON Lines), for verification by anyone who holds only the public key.

Line 1 is a header ``{"format", "origin", "tree_size", "checkpoints"}``; then one line per entry
``{"index", "entry", "leaf_hash", "link_hash"}`` (hashes in base64); the last line is ``{"end": tree_size}``.
A file without that last line was cut short.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from machimori.audit.store import StoredEntry
from machimori.audit.verify import Row, parse_entry
from machimori.diagnostics import InputError, Problem

FORMAT = "machimori-audit-export/1"


@dataclass(frozen=True)
class ExportHeader:
    """What the first line of an export says."""

    origin: str
    tree_size: int
    checkpoints: list[str]


def export_lines(origin: str, checkpoints: list[str], entries: Iterable[StoredEntry], tree_size: int) -> Iterator[str]:
    """The lines of an export file, each ending in a newline."""
    header = {"format": FORMAT, "origin": origin, "tree_size": tree_size, "checkpoints": checkpoints}
    yield json.dumps(header, ensure_ascii=False) + "\n"
    for stored in entries:
        line = {
            "index": stored.index,
            "entry": parse_entry(stored.entry),
            "leaf_hash": base64.b64encode(stored.leaf_hash).decode(),
            "link_hash": base64.b64encode(stored.link_hash).decode(),
        }
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
    yield json.dumps({"end": tree_size}) + "\n"


class ExportReader:
    """Reads an export file; every format problem is an InputError at file:line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] = self._open()
        self.header = self._read_header()

    def _open(self) -> IO[str]:
        try:
            return self.path.open(encoding="utf-8")
        except OSError as error:
            raise InputError.single(str(self.path), f"cannot read: {error.strerror or error}") from None

    def _fail(self, line: int, message: str) -> InputError:
        return InputError([Problem(str(self.path), line, 0, message)])

    def _json(self, text: str, line: int) -> Any:
        if not text.endswith("\n"):
            raise self._fail(line, "途中で切れています / the export is truncated (incomplete last line)")
        try:
            return json.loads(text)
        except ValueError as error:
            raise self._fail(line, f"JSON として読めません / not JSON: {error}") from None

    def _read_header(self) -> ExportHeader:
        first = self._handle.readline()
        if not first:
            raise self._fail(1, "空のファイルです / the export is empty")
        header = self._json(first, 1)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise self._fail(1, f"machimori の監査ログのエクスポートではありません / not a {FORMAT} file")
        checkpoints = header.get("checkpoints")
        size = header.get("tree_size")
        if not isinstance(header.get("origin"), str) or not isinstance(size, int) or not isinstance(checkpoints, list):
            raise self._fail(1, "ヘッダーが不完全です / header needs origin, tree_size and checkpoints")
        return ExportHeader(header["origin"], size, [str(note) for note in checkpoints])

    def rows(self) -> Iterator[Row]:
        """The entry rows in file order; InputError if a line is malformed or the file is cut short."""
        number = 1
        with self._handle:
            for text in self._handle:
                number += 1
                value = self._json(text, number)
                if isinstance(value, dict) and set(value) == {"end"}:
                    if value["end"] != self.header.tree_size:
                        raise self._fail(number, "終端の件数がヘッダーと違います / end count differs from the header")
                    return
                yield self._row(value, number)
        raise self._fail(
            number, "途中で切れています / the export is truncated: it has no end line (were entries cut off?)"
        )

    def _row(self, value: Any, number: int) -> Row:
        if not isinstance(value, dict) or not {"index", "entry", "leaf_hash", "link_hash"} <= set(value):
            raise self._fail(
                number,
                "index, entry, leaf_hash, link_hash が必要です / an entry line needs index, entry, leaf_hash, link_hash",
            )
        index = value["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise self._fail(number, f"index が不正です / bad index {index!r}")
        try:
            leaf = base64.b64decode(value["leaf_hash"], validate=True)
            link = base64.b64decode(value["link_hash"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise self._fail(number, "ハッシュが base64 ではありません / a hash is not base64") from None
        return Row(index, value["entry"], leaf, link)
