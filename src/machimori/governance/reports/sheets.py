"""Check sheets: one row per requirement and component or stakeholder, as XLSX, CSV or Markdown, and read back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

from openpyxl import Workbook
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from machimori import __version__
from machimori.diagnostics import InputError
from machimori.governance.assessment.result import Assessment, Target
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import CityModel
from machimori.governance.reports.labels import (
    CATEGORY_NAMES,
    STATUS_LABELS,
    STATUSES,
    both,
    category_name,
    city_name,
    element_names,
    label,
)
from machimori.governance.reports.sheet_apply import ApplyResult, apply_sheet, apply_sheets
from machimori.governance.reports.sheet_read import META_SHEET, SheetData, SheetRow, read_sheet
from machimori.governance.reports.sheet_rows import (
    CITY_COLUMN,
    COLUMNS,
    EDITABLE,
    FINGERPRINT_COLUMN,
    FORMAT,
    FORMAT_VERSION,
    FORMULA_START,
    Column,
    cell_values,
    fingerprint,
    rows_by_category,
)
from machimori.governance.text import Lang

__all__ = [
    "ApplyResult",
    "SheetData",
    "SheetRow",
    "apply_sheet",
    "apply_sheets",
    "read_sheet",
    "write_csv",
    "write_markdown",
    "write_xlsx",
]

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_HEADER_FILL = PatternFill("solid", fgColor="1F3A5F")
_EDITABLE_FILL = PatternFill("solid", fgColor="FFF8DC")
_STATUS_FILLS = {
    "implemented": "C6EFCE",
    "partial": "FFEB9C",
    "planned": "DDEBF7",
    "not-implemented": "FFC7CE",
    "not-applicable": "E7E6E6",
}

INSTRUCTIONS_JA = (
    "各区分のシートで、行ごとに「状態」をプルダウンから選んでください。",
    "実行責任 R・説明責任 A・協議先 C・報告先 I には関係主体の ID を書きます。複数あるときはカンマ（,）か読点（、）で区切ります。",
    "根拠・証跡には、規程・設定・記録など確認できるものを書きます。期限は YYYY-MM-DD で書きます。",
    "空欄のセルと状態「unknown（不明）」は「変更なし」として扱います。キー列と非表示のシートは変更しないでください。",
    "記入したファイルを推進主体に返してください（machimori assess MODEL --import-sheet FILE で取り込みます）。",
)
INSTRUCTIONS_EN = (
    "On each category's sheet, pick the status of every row from the drop-down list.",
    "Under Responsible R, Accountable A, Consulted C and Informed I write stakeholder IDs, several separated by commas.",
    "Under Evidence name something that can be checked (a policy, a setting, a record). Write due dates as YYYY-MM-DD.",
    "A blank cell, and the status 'unknown', mean 'no change'. Do not edit the Key column or the hidden sheet.",
    "Return the filled file to the promoter (read back with: machimori assess MODEL --import-sheet FILE).",
)


def write_xlsx(
    path: str | Path,
    assessment: Assessment,
    catalog: Catalog,
    model: CityModel,
    lang: Lang,
    stakeholder: str | None = None,
) -> None:
    """Write the check sheet workbook: a cover, one sheet per guideline category and a hidden metadata sheet."""
    groups = rows_by_category(assessment, catalog, model, stakeholder)
    names = element_names(model, lang)
    workbook = Workbook()
    _add_styles(workbook)
    cover = workbook.active
    cover.title = both("表紙", "Cover", lang)
    _write_cover(cover, assessment, model, lang, stakeholder, sum(len(rows) for rows in groups.values()))
    for category, targets in groups.items():
        pair = CATEGORY_NAMES.get(category, (category, category))
        sheet = workbook.create_sheet(_sheet_title(both(pair[0], pair[1], lang)))
        _write_rows(sheet, targets, catalog, names, lang)
    meta = workbook.create_sheet(META_SHEET)
    for row in _metadata(assessment, model, lang, stakeholder):
        meta.append(row)
    meta.sheet_state = "hidden"
    workbook.properties.title = f"{both('チェックシート', 'Check sheet', lang)} — {assessment.city_id}"
    workbook.properties.creator = f"machimori {__version__}"
    try:
        workbook.save(path)
    except OSError as exc:
        raise InputError.single(str(path), f"cannot write: {exc.strerror or exc} / 書き込めません") from None


def write_csv(
    assessment: Assessment, catalog: Catalog, model: CityModel, lang: Lang, stakeholder: str | None = None
) -> str:
    """The check sheet as CSV text starting with a BOM (so Excel reads it as UTF-8), city and fingerprint on each row."""
    names = element_names(model, lang)
    city, print_ = assessment.city_id, fingerprint(assessment.targets)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.header(lang) for c in COLUMNS] + [CITY_COLUMN, FINGERPRINT_COLUMN])
    for targets in rows_by_category(assessment, catalog, model, stakeholder).values():
        for target in targets:
            values = cell_values(target, catalog, names, lang)
            writer.writerow([_csv_cell(values[c.field]) for c in COLUMNS] + [city, print_])
    return "\ufeff" + buffer.getvalue()


def write_markdown(
    assessment: Assessment, catalog: Catalog, model: CityModel, lang: Lang, stakeholder: str | None = None
) -> str:
    """The check sheet as Markdown: one section per guideline category, one table per section."""
    names = element_names(model, lang)
    shown = [c for c in COLUMNS if c.field not in ("key", "category", "summary")]
    lines = [
        f"# {both('チェックシート', 'Check sheet', lang)} — {_md(city_name(model.city, lang))} ({assessment.city_id})",
        "",
        f"- {both('評価日', 'As of', lang, ' / ')}: {assessment.as_of.isoformat()}",
        f"- {both('関係主体', 'Stakeholder', lang, ' / ')}: {_md(stakeholder) if stakeholder else both('すべて', 'all', lang, ' / ')}",
        f"- {both('状態', 'Statuses', lang, ' / ')}: "
        + ", ".join(f"`{s}` {label(STATUS_LABELS, s, lang)}" for s in STATUSES),
    ]
    for category, targets in rows_by_category(assessment, catalog, model, stakeholder).items():
        pair = CATEGORY_NAMES.get(category, (category_name(catalog, category, lang),) * 2)
        lines += ["", f"## {_md(both(pair[0], pair[1], lang))}", ""]
        if not targets:
            lines.append(both("（該当する行はありません）", "(no rows)", lang))
            continue
        lines.append("| " + " | ".join(c.header(lang) for c in shown) + " |")
        lines.append("|" + "---|" * len(shown))
        for target in targets:
            values = cell_values(target, catalog, names, lang)
            lines.append("| " + " | ".join(_md(_text(values[c.field])) for c in shown) + " |")
    return "\n".join(lines) + "\n"


def _write_cover(
    sheet: Worksheet, assessment: Assessment, model: CityModel, lang: Lang, stakeholder: str | None, rows: int
) -> None:
    bold = Font(bold=True)
    sheet.append([both("チェックシート", "Check sheet", lang)])
    sheet["A1"].font = Font(bold=True, size=16)
    sheet.append([])
    details = [
        (both("都市", "City", lang, " / "), f"{city_name(model.city, lang)} ({assessment.city_id})"),
        (both("評価日", "As of", lang, " / "), assessment.as_of.isoformat()),
        (both("対象の関係主体", "Stakeholder", lang, " / "), stakeholder or both("すべて", "all", lang, " / ")),
        (both("行数", "Rows", lang, " / "), str(rows)),
        (both("作成", "Generated by", lang, " / "), f"machimori {__version__}"),
    ]
    for name, value in details:
        sheet.append([name, _safe(value)])
        sheet.cell(sheet.max_row, 1).font = bold
    for title, items in (("記入のしかた", INSTRUCTIONS_JA), ("How to fill in", INSTRUCTIONS_EN)):
        sheet.append([])
        sheet.append([title])
        sheet.cell(sheet.max_row, 1).font = bold
        for number, item in enumerate(items, 1):
            sheet.append([f"{number}.", item])
    sheet.append([])
    sheet.append([both("状態", "Status", lang, " / "), "日本語", "English"])
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    for status in STATUSES:
        sheet.append([status, *STATUS_LABELS[status]])
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 100
    sheet.column_dimensions["C"].width = 18
    for row in sheet.iter_rows():
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")


def _write_rows(
    sheet: Worksheet, targets: list[Target], catalog: Catalog, names: dict[tuple[str, str], str], lang: Lang
) -> None:
    sheet.append([c.header(lang) for c in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    styles = [_style_for(column) for column in COLUMNS]
    for row_number, target in enumerate(targets, 2):
        values = cell_values(target, catalog, names, lang)
        for column_number, column in enumerate(COLUMNS, 1):
            value = values[column.field]
            cell = sheet.cell(row_number, column_number, _safe(value) if isinstance(value, str) else value)
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the model's texts start with
            cell.style = styles[column_number - 1]
    for column_number, column in enumerate(COLUMNS, 1):
        sheet.column_dimensions[get_column_letter(column_number)].width = column.width
    sheet.freeze_panes = "A2"
    last_row = max(len(targets) + 1, 2)
    last_column = get_column_letter(len(COLUMNS))
    sheet.auto_filter.ref = f"A1:{last_column}{last_row}"
    status_column = get_column_letter(next(i for i, c in enumerate(COLUMNS, 1) if c.field == "status"))
    status_range = f"{status_column}2:{status_column}{max(last_row, 1000)}"
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(STATUSES) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="状態 / Status",
        error="一覧から選んでください / Pick a status from the list: " + ", ".join(STATUSES),
        promptTitle="状態 / Status",
        prompt=", ".join(f"{s} {STATUS_LABELS[s][0]}" for s in STATUSES),
        showInputMessage=True,
    )
    sheet.add_data_validation(validation)
    validation.add(status_range)
    for status, colour in _STATUS_FILLS.items():
        sheet.conditional_formatting.add(
            status_range,
            CellIsRule(operator="equal", formula=[f'"{status}"'], fill=PatternFill("solid", bgColor=colour)),
        )


def _add_styles(workbook: Workbook) -> None:
    """Named cell styles for the rows: assigning one by name is much cheaper than styling each cell."""
    top = {"vertical": "top"}
    for name, font, fill, wrap, number_format in (
        ("machimori key", Font(color="808080", size=8), None, False, "General"),
        ("machimori text", Font(), None, False, "General"),
        ("machimori wrap", Font(), None, True, "General"),
        ("machimori input", Font(), _EDITABLE_FILL, False, "General"),
        ("machimori input wrap", Font(), _EDITABLE_FILL, True, "General"),
        ("machimori date", Font(), _EDITABLE_FILL, False, "yyyy-mm-dd"),
    ):
        style = NamedStyle(
            name=name, font=font, alignment=Alignment(wrap_text=wrap, **top), number_format=number_format
        )
        if fill is not None:
            style.fill = fill
        workbook.add_named_style(style)


def _style_for(column: Column) -> str:
    if column.field == "key":
        return "machimori key"
    if column.field == "due":
        return "machimori date"
    if column.field in EDITABLE:
        return "machimori input wrap" if column.wrap else "machimori input"
    return "machimori wrap" if column.wrap else "machimori text"


def _metadata(assessment: Assessment, model: CityModel, lang: Lang, stakeholder: str | None) -> list[list[str]]:
    return [
        ["format", FORMAT],
        ["version", str(FORMAT_VERSION)],
        [CITY_COLUMN, model.city.id],
        [FINGERPRINT_COLUMN, fingerprint(assessment.targets)],
        ["as_of", assessment.as_of.isoformat()],
        ["lang", lang],
        ["stakeholder", stakeholder or ""],
        ["generator", f"machimori {__version__}"],
    ]


def _sheet_title(title: str) -> str:
    """A valid worksheet name: at most 31 characters, none of []:*?/\\."""
    for bad in "[]:*?/\\":
        title = title.replace(bad, " ")
    return title[:31].strip() or "sheet"


def _safe(text: str) -> str:
    """Texts for XLSX cells: characters XML 1.0 cannot hold (C0 controls, lone surrogates, U+FFFE, U+FFFF) are dropped."""
    return _NOT_XML.sub("", text)


def _text(value: str | dt.date | None) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else value


def _csv_cell(value: str | dt.date | None) -> str:
    """A CSV cell that spreadsheet programs show as text, never run as a formula (CSV injection)."""
    text = _text(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _md(text: str) -> str:
    """A Markdown table cell: pipes escaped, HTML inert, on one line."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return " ".join(text.split())
