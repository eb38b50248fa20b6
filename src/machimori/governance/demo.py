"""`machimori demo` for the governance plane: the example town assessed, reported, and one PDCA round."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from rich.console import Console

from machimori.diagnostics import InputError, write_user_file
from machimori.governance import workflow
from machimori.governance.assessment import Assessment
from machimori.governance.catalog import Catalog, load_catalog
from machimori.governance.model import CityModel
from machimori.governance.progress import compare, describe
from machimori.governance.text import Lang

DEMO_EVIDENCE = "デモ：関係者が記入した想定 / demo: filled in by the stakeholder (simulated)"


def run_demo(console: Console, out_dir: Path, lang: Lang) -> None:
    """Assess the example town, write every report into ``out_dir``, then close three gaps through a check sheet."""
    from machimori.governance.ciso_assistant import export_framework

    catalog = load_catalog()
    model_path = workflow.example_town()
    assessment, model = workflow.run(model_path, catalog)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError.single(str(out_dir), "--out must be a folder / --out にはフォルダを指定します")
    written = []
    for fmt, name in (
        ("html", f"report-{lang}.html"),
        ("json", "assessment.json"),
        ("md", "check-sheet.md"),
        ("csv", "check-sheet.csv"),
        ("xlsx", "check-sheet.xlsx"),
    ):
        path = out_dir / name
        text = workflow.render(assessment, catalog, model, fmt, lang, None, path)
        if text is not None:
            write_user_file(path, text)
        written.append(path)
    library = out_dir / "ciso-assistant-library.yaml"
    write_user_file(library, export_framework(catalog, lang=lang))
    written.append(library)

    console.rule("街守 machimori demo — 港町 Minatomachi")
    workflow.print_summary(console, assessment, lang)
    console.rule("PDCA: チェックシートの回収 / a check sheet comes back")
    written += _pdca_round(console, catalog, model_path, assessment, model, out_dir, lang)
    console.print("\n[bold]出力 / written:[/bold]")
    for path in written:
        console.print(f"  {path}")
    console.print(f"\n報告書をブラウザで開いてください / open the report: {out_dir / f'report-{lang}.html'}")


def _pdca_round(
    console: Console,
    catalog: Catalog,
    model_path: Path,
    assessment: Assessment,
    model: CityModel,
    out_dir: Path,
    lang: Lang,
) -> list[Path]:
    """The city-OS operator gets its sheet, marks its three worst gaps implemented, and the town is reassessed."""
    from machimori.governance.reports import sheets

    operator = next((s.id for s in model.stakeholders if s.kind == "city-os-operator"), model.city.promoter)
    work = out_dir / "city.yaml"
    shutil.copy(model_path, work)
    sheet_path = out_dir / f"check-sheet-{operator}.xlsx"
    sheets.write_xlsx(sheet_path, assessment, catalog, model, lang, operator)
    sheet = sheets.read_sheet(sheet_path)
    in_sheet = {row.key for row in sheet.rows}
    own = {operator} | {c.id for c in model.components if operator in (c.owner, c.operator)}
    chosen = [g.target.key for g in assessment.gaps if g.target.key in in_sheet and g.target.scope_id in own][:3]
    filled = dataclasses.replace(
        sheet,
        rows=[
            dataclasses.replace(row, status="implemented", evidence=DEMO_EVIDENCE) if row.key in chosen else row
            for row in sheet.rows
        ],
    )
    result = sheets.apply_sheet(work, filled, catalog)
    console.print(f"{operator} → {sheet_path.name}: " + ", ".join(chosen) + " = implemented")
    console.print(f"{work}: {result.updated} updated, {result.added} added")
    again, model_again = workflow.run(work, catalog)
    console.print(describe(compare(out_dir / "assessment.json", again), lang))
    after = out_dir / f"report-after-{lang}.html"
    write_user_file(after, workflow.render(again, catalog, model_again, "html", lang, None, after) or "")
    return [work, sheet_path, after]
