"""Write a filled check sheet back into the city model's status records, keeping the file's comments and layout."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from machimori import yamlfile
from machimori.diagnostics import InputError, Problem
from machimori.governance.assessment.applicability import applicable_targets, flatten
from machimori.governance.assessment.index import ModelIndex
from machimori.governance.assessment.result import Target
from machimori.governance.catalog import Catalog
from machimori.governance.model.loader import check_model, load_model
from machimori.governance.model.schema import CityModel
from machimori.governance.reports.sheet_read import SheetData, SheetRow
from machimori.governance.reports.sheet_rows import ROLES, fingerprint
from machimori.validation import did_you_mean

_FIELD_ORDER = ("requirement", "component", "stakeholder", "status", *ROLES, "evidence", "due")


@dataclass(frozen=True)
class ApplyResult:
    """What reading a check sheet back changed.

    ``updated`` and ``added`` count rows whose values the sheet changed (an existing record was updated, or a
    new one added), ``unchanged`` the other rows. ``pinned`` counts unchanged component rows that were given a
    record of their own so that they keep their values, where a changed stakeholder row would otherwise have
    passed its new values down to that stakeholder's components.
    """

    updated: int
    added: int
    unchanged: int
    pinned: int = 0


Change = tuple[Target, dict[str, Any]]


def apply_sheet(model_path: str | Path, sheet: SheetData, catalog: Catalog) -> ApplyResult:
    """Write one sheet's changed rows into the model file: ``apply_sheets`` with a single sheet."""
    return apply_sheets(model_path, [sheet], catalog)


def apply_sheets(model_path: str | Path, sheets: Sequence[SheetData], catalog: Catalog) -> ApplyResult:
    """Write the sheets' changed rows into the model file as status records, in place and at once.

    Every sheet is checked against the model (city, fingerprint, rows, stakeholders) before anything is written;
    a row that two sheets change differently is an error. The model is then written once, atomically, and stays
    valid: afterwards every row reads back from the model as the sheets show it (the changed one, where a row is
    on several sheets). Only YAML models can be written back; a JSON model is refused.
    """
    path = Path(model_path)
    text = _read_text(path)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        raise InputError.single(
            str(path),
            'check sheets can be imported into YAML models only; convert with: python -c "import json, sys; '
            "from ruamel.yaml import YAML; YAML().dump(json.load(open(sys.argv[1], encoding='utf-8')), sys.stdout)\" "
            f"{path.name} > {path.with_suffix('.yaml').name} "
            "/ チェックシートは YAML のモデルにだけ取り込めます",
        )
    source = ", ".join(sheet.path for sheet in sheets)
    model = load_model(path, catalog)
    targets = flatten(applicable_targets(ModelIndex(model), catalog))
    problems: list[Problem] = []
    for sheet in sheets:
        try:
            _check_same_model(sheet, model, targets)
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    rows, changes = _merged(sheets, model, {t.key: t for t in targets})
    if not changes:
        return ApplyResult(0, 0, len(rows))
    yaml = _round_trip(text)
    try:
        data = yaml.load(text)
    except YAMLError as exc:  # load_model just read it, so only a parser disagreement lands here
        raise InputError.single(str(path), f"cannot edit this YAML: {str(exc).splitlines()[0]}") from None
    statuses = data.get("statuses")
    if not isinstance(statuses, CommentedSeq):
        statuses = CommentedSeq()
        data["statuses"] = statuses
    if not statuses:
        statuses.fa.set_block_style()
    updated, added = _write(statuses, changes)
    output = _dump(yaml, data, text)
    resolved = _resolve(yamlfile.parse(output.encode("utf-8"), str(path)), catalog, source)
    pins = [
        (target, _values(target)) for row, target in rows if not _diff(row, target) and _diff(row, resolved[target.key])
    ]
    if pins:
        _write(statuses, pins)
        output = _dump(yaml, data, text)
    _replace_checked(path, output, catalog, source, rows)
    return ApplyResult(updated, added, len(rows) - len(changes), len(pins))


def _merged(
    sheets: Sequence[SheetData], model: CityModel, by_key: dict[str, Target]
) -> tuple[list[tuple[SheetRow, Target]], list[Change]]:
    """One row per key over all sheets, and the changes; a row on several sheets takes what they change.

    Sheets that leave a row as it is do not hold back another sheet's change of it; two sheets changing the
    same field of a row differently is an error, located at the second.
    """
    problems: list[Problem] = []
    merged: dict[str, tuple[SheetRow, Target, dict[str, Any]]] = {}
    for sheet in sheets:
        try:
            matched = _matched(sheet, model, by_key)
        except InputError as exc:
            problems += exc.problems
            continue
        for row, target in matched:
            change = _diff(row, target)
            earlier = merged.get(row.key)
            if earlier is None or (change and not earlier[2]):
                merged[row.key] = (row, target, change)
                continue
            if not change:
                continue
            first, _, first_change = earlier
            clashes = sorted(f for f in change if f in first_change and first_change[f] != change[f])
            if clashes:
                problems.append(
                    row.location.problem(
                        clashes[0],
                        f"'{row.key}' is changed differently on {first.location.file}:{first.location.line} "
                        f"({', '.join(clashes)}) / 別のシートで異なる値に変更されています",
                    )
                )
                continue
            combined = replace(first, **{f: getattr(row, f) for f in change})  # changes name SheetRow fields
            merged[row.key] = (combined, target, {**first_change, **change})
    if problems:
        raise InputError(problems)
    rows = [(row, target) for row, target, _ in merged.values()]
    return rows, [(target, change) for _, target, change in merged.values() if change]


def _check_same_model(sheet: SheetData, model: CityModel, targets: list[Target]) -> None:
    if sheet.city != model.city.id:
        raise InputError.single(
            sheet.path,
            f"this check sheet is for city '{sheet.city or '?'}', but the model is '{model.city.id}': "
            "a check sheet from another model / 別のモデルのチェックシートです",
        )
    if sheet.fingerprint != fingerprint(targets):
        raise InputError.single(
            sheet.path,
            "a check sheet from another model: its rows do not match this model's components, stakeholders and "
            "catalog (or they changed since the sheet was written); write a new sheet and fill it in "
            "/ 別のモデル（または作成後に変更されたモデル）のチェックシートです",
        )


def _matched(sheet: SheetData, model: CityModel, by_key: dict[str, Target]) -> list[tuple[SheetRow, Target]]:
    """Each row with the target it stands for; unknown rows and stakeholders are errors."""
    stakeholders = [s.id for s in model.stakeholders]
    known = set(stakeholders)
    problems: list[Problem] = []
    matched = []
    for row in sheet.rows:
        target = by_key.get(row.key)
        if target is None:
            problems.append(
                row.location.problem("key", f"unknown row '{row.key}': not in this model / このモデルにない行です")
            )
            continue
        for role in ROLES:
            for who in getattr(row, role):
                if who not in known:
                    problems.append(
                        row.location.problem(
                            role, f"unknown stakeholder '{who}'{did_you_mean(who, stakeholders)} / 未定義の関係主体です"
                        )
                    )
        matched.append((row, target))
    if problems:
        raise InputError(problems)
    return matched


def _write(statuses: CommentedSeq, changes: list[Change]) -> tuple[int, int]:
    """Put each change into the records of exactly its target's scope, or a new record; (updated, added)."""
    updated = added = 0
    for target, change in changes:
        records = [r for r in statuses if isinstance(r, CommentedMap) and _same_scope(r, target)]
        if records:
            for record in records:
                for name, value in change.items():
                    _set(record, name, value)
            updated += 1
        else:
            statuses.append(_new_record(target, change))
            added += 1
    return updated, added


def _values(target: Target) -> dict[str, Any]:
    """Every value a target resolves to, as a change that pins them."""
    values: dict[str, Any] = {"status": target.status}
    values.update({role: list(getattr(target, role)) for role in ROLES if getattr(target, role)})
    if target.evidence:
        values["evidence"] = target.evidence
    if target.due:
        values["due"] = target.due
    return values


def _dump(yaml: YAML, data: Any, original: str) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    output = buffer.getvalue()
    if "\r\n" in original:
        output = output.replace("\r\n", "\n").replace("\n", "\r\n")
    return output


def _resolve(document: yamlfile.Document, catalog: Catalog, source: str) -> dict[str, Target]:
    """Key → target as the edited model resolves it; a model the edit broke is reported, not written."""
    try:
        model = check_model(document, catalog)
    except InputError as exc:
        raise InputError(
            Problem(p.file, p.line, p.column, f"after applying {source}: {p.message}") for p in exc.problems
        ) from None
    return {t.key: t for t in flatten(applicable_targets(ModelIndex(model), catalog))}


def _diff(row: SheetRow, target: Target) -> dict[str, Any]:
    """The fields a row states differently from the target; blank cells and 'unknown' state nothing."""
    change: dict[str, Any] = {}
    if row.status not in (None, "unknown") and row.status != target.status:
        change["status"] = row.status
    for role in ROLES:
        wanted: list[str] = getattr(row, role)
        if wanted and set(wanted) != set(getattr(target, role)):
            change[role] = list(wanted)
    if row.evidence is not None and _lines(row.evidence) != _lines(target.evidence or ""):
        change["evidence"] = _lines(row.evidence)
    if row.due is not None and row.due != target.due:
        change["due"] = row.due
    return change


def _lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _same_scope(record: CommentedMap, target: Target) -> bool:
    """A record with exactly the target's requirement and scope, as the status resolver groups them."""
    if record.get("requirement") != target.requirement:
        return False
    if target.scope == "component":
        return bool(record.get("component") == target.scope_id)
    return record.get("component") is None and record.get("stakeholder") == target.scope_id


def _new_record(target: Target, change: dict[str, Any]) -> CommentedMap:
    """A record for exactly this target, carrying every value the row showed (it now wins over broader ones)."""
    record = CommentedMap()
    record["requirement"] = target.requirement
    record[target.scope] = target.scope_id
    record["status"] = change.get("status", target.status)
    for role in ROLES:
        value = change.get(role, list(getattr(target, role)))
        if value:
            record[role] = _ids(value)
    evidence = change.get("evidence", target.evidence)
    if evidence:
        record["evidence"] = _scalar(evidence)
    due = change.get("due", target.due)
    if due is not None:
        record["due"] = due
    return record


def _set(record: CommentedMap, name: str, value: Any) -> None:
    """Set a field of a record in place, or insert it where the schema's field order puts it."""
    if name in ROLES:
        old = record.get(name)
        value = _ids(value, flow=not (isinstance(old, CommentedSeq) and not old.fa.flow_style()))
    elif name == "evidence":
        value = _scalar(value)
    if name in record:
        record[name] = value
        return
    rank = _FIELD_ORDER.index(name)
    position = sum(1 for key in record if key in _FIELD_ORDER and _FIELD_ORDER.index(key) < rank)
    record.insert(position, name, value)


def _ids(values: list[str], flow: bool = True) -> CommentedSeq:
    seq = CommentedSeq(values)
    if flow:
        seq.fa.set_flow_style()
    else:
        seq.fa.set_block_style()
    return seq


def _scalar(text: str) -> str:
    return LiteralScalarString(text) if "\n" in text else text


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.single(str(path), f"cannot read: {exc}") from None


def _round_trip(text: str) -> YAML:
    """A round-trip YAML writer set up to reproduce this file's indentation."""
    yaml = YAML(typ="rt")
    yaml.representer.ignore_aliases = lambda *_: True  # shared dates must not become &anchors
    yaml.preserve_quotes = True
    yaml.width = 100_000
    yaml.allow_unicode = True
    mapping, sequence, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.explicit_start = bool(re.match(r"(?:\s*#[^\n]*\n|\s*\n)*---", text))
    return yaml


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file uses them; ruamel's defaults where unsure."""
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    parent: int | None = None  # indentation of the last line that was only a key
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if parent is not None and indent > parent:
            if stripped.startswith("- ") and sequence is None:
                offset = indent - parent
                content = len(stripped) - len(stripped[1:].lstrip(" "))
                sequence = offset + content
            elif not stripped.startswith("-") and mapping is None:
                mapping = indent - parent
        parent = indent if re.match(r"^[^#'\"\[{]*:\s*(#.*)?$", stripped) and not stripped.startswith("- ") else None
        if mapping is not None and sequence is not None:
            break
    mapping = mapping or 2
    offset = offset or 0
    sequence = max(sequence or 2, offset + 2)
    return mapping, sequence, offset


def _replace_checked(
    path: Path, output: str, catalog: Catalog, source: str, rows: list[tuple[SheetRow, Target]]
) -> None:
    """Write next to the model, check the result loads and shows the sheet's values, then swap it in."""
    real = path.resolve()  # through a symbolic link, replace the file it points to
    handle, temporary = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(output.encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(OSError):
            os.chmod(temporary, real.stat().st_mode & 0o7777)
        document = yamlfile.load(temporary)
        document.path = str(path)
        resolved = _resolve(document, catalog, source)
        problems = [
            row.location.problem(
                None, f"{row.key}: would not read back as the sheet shows it ({', '.join(sorted(diff))})"
            )
            for row, _ in rows
            if (diff := _diff(row, resolved[row.key]))
        ]
        if problems:
            raise InputError(problems)
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):
        directory = os.open(real.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
