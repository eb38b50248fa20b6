"""Read a filled check sheet (XLSX or CSV) back, reporting every problem at its sheet, row and column."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from machimori.diagnostics import InputError, Problem, read_user_file
from machimori.governance.model.schema import StatusValue
from machimori.governance.reports.labels import CATEGORY_NAMES, STATUS_LABELS, STATUSES
from machimori.governance.reports.sheet_rows import (
    CITY_COLUMN,
    COLUMNS,
    EDITABLE,
    FINGERPRINT_COLUMN,
    FORMAT,
    FORMULA_START,
    HEADER_SEARCH_ROWS,
    ROLES,
)
from machimori.validation import did_you_mean

META_SHEET = "_machimori"
"""The hidden sheet that says which city and model an XLSX check sheet was written for."""

_KEY = re.compile(r"^[^@\s]+@(component|stakeholder):\S+$")
_SPLIT = re.compile(r"[,、;\s]+")
_JAPANESE_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")
_STATUS_ALIASES: dict[str, StatusValue] = {
    **{s: s for s in STATUSES},
    **{STATUS_LABELS[s][0]: s for s in STATUSES},
    **{STATUS_LABELS[s][1].replace(" ", "-"): s for s in STATUSES},
    "実装済み": "implemented",
    "一部実装済み": "partial",
    "該当なし": "not-applicable",
    "n/a": "not-applicable",
}


@dataclass(frozen=True)
class Location:
    """Where a row of a check sheet is: the file (and sheet), the line, and the column of each field."""

    file: str
    line: int
    columns: Mapping[str, int] = field(default_factory=dict)
    spreadsheet: bool = False

    def problem(self, column_of: str | None, message: str) -> Problem:
        """A problem on this row, at the column holding ``column_of`` where there is one."""
        column = self.columns.get(column_of, 0) if column_of else 0
        if self.spreadsheet and column:
            message += f" [{_letter(column)}{self.line}]"
        return Problem(self.file, self.line, column, message)


@dataclass(frozen=True)
class SheetRow:
    """One filled row: a blank cell reads as None or an empty list, meaning 'no change'."""

    key: str
    status: StatusValue | None
    responsible: list[str]
    accountable: list[str]
    consulted: list[str]
    informed: list[str]
    evidence: str | None
    due: dt.date | None
    location: Location


@dataclass(frozen=True)
class SheetData:
    """A check sheet read back: which city and model it was written for, and its rows."""

    path: str
    kind: Literal["xlsx", "csv"]
    city: str | None
    fingerprint: str | None
    rows: list[SheetRow]


def read_sheet(path: str | Path) -> SheetData:
    """Read a filled XLSX or CSV check sheet; raise InputError listing every problem with its location."""
    name = str(path)
    raw = read_user_file(path)
    suffix = Path(path).suffix.lower()
    if raw.startswith(b"PK\x03\x04"):
        return _read_xlsx(name, raw)
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError.single(
            name, "an old Excel 97-2003 (.xls) file: save it as .xlsx / 古い .xls 形式です。.xlsx で保存してください"
        )
    if suffix in (".xlsx", ".xlsm"):
        raise InputError.single(name, "not an XLSX file (damaged, or another format) / XLSX ファイルではありません")
    if suffix in (".csv", ".txt"):
        return _read_csv(name, raw)
    raise InputError.single(
        name,
        f"wrong file type '{suffix or '(none)'}': expected a check sheet as .xlsx or .csv / 対応していない形式です",
    )


def _read_xlsx(name: str, raw: bytes) -> SheetData:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():  # e.g. "Data Validation extension is not supported": not the user's concern
            warnings.simplefilter("ignore")
            workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise InputError.single(
            name, f"not a readable XLSX file ({type(exc).__name__}) / XLSX として読めません"
        ) from None
    problems: list[Problem] = []
    rows: list[SheetRow] = []
    try:
        meta: dict[str, str] = {}
        found_rows = headless = False
        for sheet in workbook.worksheets:
            try:
                sheet.reset_dimensions()  # some programs write wrong dimensions; read every row there is
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = [list(row) for row in sheet.iter_rows(values_only=True)]
            except Exception as exc:
                problems.append(
                    Problem(f"{name}[{sheet.title}]", 0, 0, f"cannot read this sheet ({type(exc).__name__})")
                )
                continue
            if sheet.title == META_SHEET:
                meta = {str(r[0]).strip(): _text(r[1]) or "" for r in values if len(r) >= 2 and r[0] is not None}
                continue
            start = next((i for i, row in enumerate(values[:HEADER_SEARCH_ROWS]) if _recognised(row)), None)
            if start is None:
                if _normal(sheet.title) in _CATEGORY_TITLES:
                    headless = True
                    problems.append(
                        Problem(
                            f"{name}[{sheet.title}]",
                            0,
                            0,
                            f"no header row with a 'キー / Key' column in the first {HEADER_SEARCH_ROWS} rows of this "
                            "category sheet: restore the header row / この区分のシートに見出し行がありません",
                        )
                    )
                continue  # the cover, or a sheet the user added
            found_rows = True
            lines = range(start + 1, len(values) + 1)
            rows += _rows(f"{name}[{sheet.title}]", values[start:], True, problems, lines)
    finally:
        workbook.close()
    if not meta:
        problems.append(
            Problem(
                name,
                0,
                0,
                f"no '{META_SHEET}' sheet: not a machimori check sheet, or the sheet was deleted "
                "/ machimori のチェックシートではありません",
            )
        )
    elif meta.get("format") != FORMAT:
        problems.append(
            Problem(f"{name}[{META_SHEET}]", 1, 2, f"not a machimori check sheet (format '{meta.get('format')}')")
        )
    if not found_rows and not headless:
        problems.append(
            Problem(name, 0, 0, "no sheet with a 'キー / Key' column / 「キー / Key」列のあるシートがありません")
        )
    _check_duplicates(rows, problems)
    if problems:
        raise InputError(problems)
    return SheetData(name, "xlsx", meta.get(CITY_COLUMN) or None, meta.get(FINGERPRINT_COLUMN) or None, rows)


def _read_csv(name: str, raw: bytes) -> SheetData:
    if b"\x00" in raw[:4096]:
        raise InputError.single(name, "not a text file: expected a CSV check sheet / テキストファイルではありません")
    for encoding in ("utf-8-sig", "cp932"):  # Excel in Japan saves 'CSV' as Shift_JIS
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputError.single(name, "neither UTF-8 nor Shift_JIS text / 文字コードを判別できません")
    problems: list[Problem] = []
    values: list[list[Any]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError.single(
                name, f"malformed CSV: {exc} / CSV の形式が正しくありません", reader.line_num, 1
            ) from None
        values.append([_unguard(cell) for cell in row])
        lines.append(start)
    if not values or not any(values[0]):
        raise InputError.single(name, "empty file: no header row / ヘッダー行がありません", 1, 1)
    rows = _rows(name, values, False, problems, lines)
    header = _header(values[0])
    identities: dict[tuple[str, str], int] = {}
    for column in (CITY_COLUMN, FINGERPRINT_COLUMN):
        if column not in header:
            problems.append(
                Problem(name, 1, 0, f"missing column '{column}': not a machimori check sheet / 列がありません")
            )
    if not problems:
        for row_values, line in zip(values[1:], lines[1:], strict=True):
            if any(_text(v) for v in row_values):
                identity = (_cell(row_values, header[CITY_COLUMN]), _cell(row_values, header[FINGERPRINT_COLUMN]))
                identities.setdefault(identity, line)
    if len(identities) > 1:
        line = sorted(identities.values())[1]
        problems.append(
            Problem(
                name,
                line,
                header[CITY_COLUMN] + 1,
                "rows from different models in one file / 別のモデルの行が混在しています",
            )
        )
    _check_duplicates(rows, problems)
    if problems:
        raise InputError(problems)
    city, print_ = next(iter(identities), (None, None))
    return SheetData(name, "csv", city or None, print_ or None, rows)


def _rows(
    file: str, values: list[list[Any]], spreadsheet: bool, problems: list[Problem], lines: Sequence[int] | None = None
) -> list[SheetRow]:
    header = _header(values[0])
    missing = [c for c in COLUMNS if c.field in ("key", "status") and c.field not in header]
    for column in missing:
        problems.append(
            Problem(file, lines[0] if lines else 1, 0, f"missing column '{column.header('ja')}' / 列がありません")
        )
    if missing:
        return []
    columns = {field_: index + 1 for field_, index in header.items()}
    rows = []
    for offset, row_values in enumerate(values[1:], 1):
        cells = {f: row_values[i] if i < len(row_values) else None for f, i in header.items()}
        if not any(_text(cells.get(f)) for f in ("key", *EDITABLE)):
            continue
        location = Location(file, lines[offset] if lines else offset + 1, columns, spreadsheet)
        row = _row(cells, location, problems)
        if row is not None:
            rows.append(row)
    return rows


def _row(cells: dict[str, Any], location: Location, problems: list[Problem]) -> SheetRow | None:
    key = _text(cells.get("key"))
    if not key:
        problems.append(
            location.problem(
                "key",
                "row without a key: rows can only be read back into the sheet that machimori wrote / キーがありません",
            )
        )
        return None
    if not _KEY.match(key):
        problems.append(
            location.problem(
                "key",
                f"malformed key '{key}' (expected REQUIREMENT@component:ID or REQUIREMENT@stakeholder:ID) / キーが正しくありません",
            )
        )
        return None
    before = len(problems)
    status = _status(cells.get("status"), location, problems)
    due = _due(cells.get("due"), location, problems)
    if len(problems) > before:
        return None
    roles = {role: _ids(cells.get(role)) for role in ROLES}
    return SheetRow(
        key=key,
        status=status,
        responsible=roles["responsible"],
        accountable=roles["accountable"],
        consulted=roles["consulted"],
        informed=roles["informed"],
        evidence=_text(cells.get("evidence")) or None,
        due=due,
        location=location,
    )


def _status(value: Any, location: Location, problems: list[Problem]) -> StatusValue | None:
    raw = _text(value)
    if not raw:
        return None
    normal = unicodedata.normalize("NFKC", raw).strip().casefold().replace("_", "-")
    for candidate in (normal, "-".join(normal.split())):  # the whole cell only: "not yet implemented" is no status
        if candidate in _STATUS_ALIASES:
            return _STATUS_ALIASES[candidate]
    problems.append(
        location.problem(
            "status",
            f"unknown status '{raw}'{did_you_mean(normal, STATUSES)} (expected one of: {', '.join(STATUSES)}) / 不明な状態",
        )
    )
    return None


def _due(value: Any, location: Location, problems: list[Problem]) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2958466:
        from openpyxl.utils.datetime import from_excel

        with contextlib.suppress(ValueError, OverflowError, TypeError):
            converted = from_excel(value)
            if isinstance(converted, dt.datetime):
                return converted.date()
    text = unicodedata.normalize("NFKC", str(value)).strip()
    match = _JAPANESE_DATE.match(text)
    if match:
        text = "-".join(match.groups())
    parts = re.split(r"[-/.]", text)
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        try:
            return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            pass
    problems.append(location.problem("due", f"'{value}' is not a date (expected YYYY-MM-DD) / 日付ではありません"))
    return None


def _ids(value: Any) -> list[str]:
    text = unicodedata.normalize("NFKC", _text(value))
    return list(dict.fromkeys(part for part in _SPLIT.split(text) if part))


def _check_duplicates(rows: Iterable[SheetRow], problems: list[Problem]) -> None:
    seen: dict[str, Location] = {}
    for row in rows:
        first = seen.setdefault(row.key, row.location)
        if first is not row.location:
            problems.append(
                row.location.problem(
                    "key", f"'{row.key}' appears twice (first at {first.file}:{first.line}) / 重複した行です"
                )
            )


def _header(row: Sequence[Any]) -> dict[str, int]:
    """Field → 0-based column index, for every header cell this reader recognises."""
    found: dict[str, int] = {}
    for index, cell in enumerate(row):
        field_ = _HEADERS.get(_normal(_text(cell)))
        if field_ is not None and field_ not in found:
            found[field_] = index
    return found


def _recognised(row: Sequence[Any]) -> bool:
    return bool(_header(row).keys() & ({"key"} | EDITABLE))


def _normal(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _header_forms() -> Iterator[tuple[str, str]]:
    for column in COLUMNS:
        for form in (column.field, column.ja, column.en, column.header("ja"), column.header("en")):
            yield _normal(form), column.field
    yield CITY_COLUMN, CITY_COLUMN
    yield _normal(FINGERPRINT_COLUMN), FINGERPRINT_COLUMN


_HEADERS: dict[str, str] = dict(_header_forms())
_CATEGORY_TITLES: frozenset[str] = frozenset(
    _normal(title)
    for category, (ja, en) in CATEGORY_NAMES.items()
    for title in (category, ja, en, f"{ja} {en}", f"{en} {ja}")
)
"""The names the writer gives the category sheets (and the parts a user might shorten them to), normalised."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def _cell(row: Sequence[Any], index: int) -> str:
    return _text(row[index]) if index < len(row) else ""


def _unguard(cell: str) -> str:
    """Undo the apostrophe the CSV writer puts before texts a spreadsheet would run as formulas."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def _letter(column: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(column))
