"""What the CLI runs: load, assess, render, read check sheets back, and the demo."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from machimori.diagnostics import InputError
from machimori.governance.assessment import Assessment, assess
from machimori.governance.assessment.result import RATINGS
from machimori.governance.catalog import Catalog
from machimori.governance.model import CityModel, load_model
from machimori.governance.progress import Progress
from machimori.governance.reports.labels import RATING_LABELS, pick
from machimori.governance.text import Lang
from machimori.validation import did_you_mean


def run(model_path: Path, catalog: Catalog, *, as_of: dt.date | None = None) -> tuple[Assessment, CityModel]:
    """Load a model and assess it."""
    with _bulk_allocation():
        model = load_model(model_path, catalog)
        return assess(model, catalog, as_of=as_of), model


@contextlib.contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic structures.

    A city of 10,000 components makes millions of small objects; the collector's repeated full passes
    over them cost about a quarter of the run and would free nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def render(
    assessment: Assessment,
    catalog: Catalog,
    model: CityModel,
    format_: str,
    lang: Lang,
    stakeholder: str | None,
    output: Path | None,
    progress: Progress | None = None,
) -> str | None:
    """Render in a format; returns text to write, or None when the renderer wrote ``output`` itself."""
    from machimori.governance.reports import html, sheets
    from machimori.governance.reports.json_report import to_json

    if stakeholder is not None:
        check_stakeholder(model, stakeholder)
    if format_ == "json":
        with _bulk_allocation():
            return json.dumps(to_json(assessment, catalog, progress), ensure_ascii=False) + "\n"
    if format_ == "html":
        return html.render_html(assessment, catalog, model, lang)
    if format_ == "csv":
        return sheets.write_csv(assessment, catalog, model, lang, stakeholder)
    if format_ == "md":
        return sheets.write_markdown(assessment, catalog, model, lang, stakeholder)
    if output is None:
        raise InputError.single("--output", "XLSX needs an output file: -o sheet.xlsx / XLSX には -o が必要です")
    sheets.write_xlsx(output, assessment, catalog, model, lang, stakeholder)
    return None


def check_stakeholder(model: CityModel, stakeholder: str) -> None:
    """Raise InputError unless the model has that stakeholder."""
    known = [s.id for s in model.stakeholders]
    if stakeholder not in known:
        raise InputError.single(
            "--stakeholder", f"unknown stakeholder '{stakeholder}'{did_you_mean(stakeholder, known)}"
        )


def import_sheets(model_path: Path, sheet_paths: list[Path], catalog: Catalog) -> str:
    """Read filled check sheets back into the model's status records in one write; a one-line summary."""
    from machimori.governance.reports import sheets

    result = sheets.apply_sheets(model_path, [sheets.read_sheet(path) for path in sheet_paths], catalog)
    return f"{result.updated} updated, {result.added} added, {result.unchanged} unchanged"


def has_finding_at_least(assessment: Assessment, rating: str) -> bool:
    """Whether any finding is rated ``rating`` or worse."""
    floor = RATINGS.index(rating)
    return any(RATINGS.index(f.rating) >= floor for f in assessment.findings)


def print_summary(console: Console, assessment: Assessment, lang: Lang) -> None:
    """The assessment on a terminal: figures, findings by kind, the worst gaps."""
    ja = lang == "ja"
    console.print(
        f"[bold]{escape(assessment.city_name(lang))}[/bold] ({escape(assessment.city_id)}) — "
        + ("評価日" if ja else "as of")
        + f" {assessment.as_of}"
    )
    console.print(
        ("要件" if ja else "requirements")
        + f" {assessment.requirements_applicable}/{assessment.requirements_total}  "
        + ("対象" if ja else "targets")
        + f" {len(assessment.targets)}  "
        + ("充足率" if ja else "coverage")
        + f" {assessment.coverage:.1%}  "
        + ("指摘" if ja else "findings")
        + f" {len(assessment.findings)}  "
        + ("未対応リスク" if ja else "open risks")
        + f" {assessment.risks_open}/{len(assessment.risks)}"
    )
    table = Table(title="指摘 / findings (top 15)")
    table.add_column("評価 / rating", no_wrap=True)
    table.add_column("種類 / kind", no_wrap=True)
    table.add_column("内容 / finding", overflow="fold")
    for finding in assessment.findings[:15]:
        message = finding.message_ja if ja else finding.message_en
        table.add_row(_rating(finding.rating, lang), finding.kind, escape(message))
    console.print(table)


def _rating(rating: str, lang: Lang) -> str:
    colour = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "green"}[rating]
    return f"[{colour}]{pick(RATING_LABELS[rating], lang)}[/{colour}]"


def example_town() -> Path:
    """The example town's model: $MACHIMORI_EXAMPLES, else examples/ of the source tree."""
    root = Path(os.environ.get("MACHIMORI_EXAMPLES", Path(__file__).resolve().parents[3] / "examples"))
    path = root / "minatomachi" / "city.yaml"
    if not path.is_file():
        raise InputError.single(
            str(path),
            "example town not found; run from a clone of the repository "
            "or set MACHIMORI_EXAMPLES / 例の町が見つかりません",
        )
    return path
