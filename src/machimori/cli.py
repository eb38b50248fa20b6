"""The `machimori` command line."""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from machimori import __version__
from machimori.cli_detect import detect_app
from machimori.cli_device import device_app, simulate
from machimori.cli_guard import guard
from machimori.cli_identity import account_app, client_app
from machimori.cli_platform import audit_app, db_app, serve, token_app
from machimori.diagnostics import InputError, write_user_file
from machimori.governance.catalog import Catalog, load_catalog
from machimori.governance.text import Lang

app = typer.Typer(
    name="machimori",
    help="街守 machimori — スマートシティのセキュリティ基盤 / the security platform of a smart city's data platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="ガイドラインのカタログ / the guideline catalog (CPSF requirements, risks, concerns).", no_args_is_help=True
)
model_app = typer.Typer(help="都市モデル / the city model file.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(model_app, name="model")
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(account_app, name="account")
app.add_typer(client_app, name="client")
app.add_typer(device_app, name="device")
app.add_typer(detect_app, name="detect")
app.command()(serve)
app.command()(guard)
app.command()(simulate)

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)

LangOption = Annotated[Lang, typer.Option("--lang", "-l", help="ja または en / language of the output")]
CatalogOption = Annotated[
    list[Path] | None,
    typer.Option("--catalog", help="追加・置換するカタログ / extra catalog file(s), e.g. the official CPSF list"),
]


class Section(StrEnum):
    """Catalog sections that `catalog list` shows."""

    requirements = "requirements"
    risks = "risks"
    concerns = "concerns"
    categories = "categories"
    layers = "layers"
    data_types = "data-types"
    cpsf_categories = "cpsf-categories"


def _catalog(extra: list[Path] | None) -> Catalog:
    return load_catalog(extra or ())


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="バージョン / show the version")] = False,
) -> None:
    if version:
        out.print(f"machimori {__version__}")
        raise typer.Exit()


@catalog_app.command("list")
def catalog_list(
    section: Annotated[Section, typer.Option("--section", "-s")] = Section.requirements,
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="CPSF category (AC) or guideline category (asset)")
    ] = None,
    lang: LangOption = "ja",
    catalog_files: CatalogOption = None,
) -> None:
    """カタログの一覧 / list catalog entries."""
    from machimori.governance.catalog.views import rows_for

    catalog = _catalog(catalog_files)
    headers, rows = rows_for(catalog, section.value, lang, category)
    table = Table(*headers, show_lines=False)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    out.print(table)
    out.print(f"{len(rows)} 件 / entries")


@catalog_app.command("show")
def catalog_show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="CPS.AC-4, R-001-1, supply-chain, asset, ...")],
    lang: LangOption = "ja",
    catalog_files: CatalogOption = None,
) -> None:
    """一つの項目を表示 / show one catalog entry."""
    from machimori.governance.catalog.views import describe

    text = describe(_catalog(catalog_files), entry_id, lang)
    if text is None:
        err.print(f"machimori: no catalog entry '{entry_id}' / 該当する項目がありません")
        raise typer.Exit(2)
    out.print(text, markup=False)


@catalog_app.command("search")
def catalog_search(
    words: Annotated[list[str], typer.Argument(help="検索語 / words to find (all must match)")],
    lang: LangOption = "ja",
    catalog_files: CatalogOption = None,
) -> None:
    """カタログを検索 / search every catalog entry in ja and en."""
    from machimori.governance.catalog.views import search

    hits = search(_catalog(catalog_files), words, lang)
    table = Table("ID", "種類 / kind", "内容 / text")
    for hit in hits:
        table.add_row(*(escape(cell) for cell in hit))
    out.print(table)
    out.print(f"{len(hits)} 件 / hits")


class ExportFormat(StrEnum):
    """Formats `catalog export` writes."""

    ciso_assistant = "ciso-assistant"
    yaml = "yaml"


@catalog_app.command("export")
def catalog_export(
    format_: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.ciso_assistant,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    lang: LangOption = "ja",
    catalog_files: CatalogOption = None,
) -> None:
    """カタログを書き出す / export the catalog (CISO Assistant framework library, or our own YAML)."""
    catalog = _catalog(catalog_files)
    if format_ is ExportFormat.ciso_assistant:
        from machimori.governance.ciso_assistant import export_framework

        text = export_framework(catalog, lang=lang)
    else:
        from machimori.governance.catalog.views import export_yaml

        text = export_yaml(catalog)
    _write_text(output, text)


@model_app.command("check")
def model_check(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL.yaml")],
    catalog_files: CatalogOption = None,
) -> None:
    """モデルを検証 / validate a city model (exit 2 with file:line:column on problems)."""
    from machimori.governance.model import load_model

    model = load_model(model_path, _catalog(catalog_files))
    out.print(
        f"OK {model_path}: {len(model.stakeholders)} stakeholders, {len(model.components)} components, "
        f"{len(model.datasets)} datasets, {len(model.flows)} flows, {len(model.services)} services, "
        f"{len(model.statuses)} status records"
    )


@model_app.command("schema")
def model_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
) -> None:
    """モデルの JSON Schema / print the JSON Schema of the city model format."""
    from machimori.governance.model.jsonschema import city_model_schema

    _write_text(output, json.dumps(city_model_schema(), ensure_ascii=False, indent=2) + "\n")


class FailOn(StrEnum):
    """Ratings `--fail-on` accepts."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class ReportFormat(StrEnum):
    """Formats `assess` writes."""

    html = "html"
    xlsx = "xlsx"
    csv = "csv"
    md = "md"
    json = "json"


@app.command()
def assess(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL.yaml", help="都市モデル / the city model")],
    lang: LangOption = "ja",
    format_: Annotated[ReportFormat | None, typer.Option("--format", "-f", help="出力形式 / output format")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="出力先 / output file")] = None,
    stakeholder: Annotated[
        str | None,
        typer.Option("--stakeholder", help="この関係者のチェックシートだけ / check sheet of one stakeholder"),
    ] = None,
    import_sheet: Annotated[
        list[Path] | None,
        typer.Option("--import-sheet", help="記入済みチェックシートをモデルに取り込む / read filled check sheets back"),
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="評価日 YYYY-MM-DD (default: today, UTC)")] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="前回の JSON 結果と比べる / compare with an earlier `-f json` result (PDCA)"),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option("--fail-on", help="指摘がこの評価以上なら exit 1 / exit 1 if a finding is rated at least this"),
    ] = None,
    catalog_files: CatalogOption = None,
) -> None:
    """都市モデルを評価 / assess a city model: findings, risks, gaps, RACI, check sheets and reports."""
    from machimori.governance import workflow

    catalog = _catalog(catalog_files)
    date = _parse_date(as_of)
    format_ = _output_format(format_, output)
    if stakeholder is not None and format_ not in (ReportFormat.xlsx, ReportFormat.csv, ReportFormat.md):
        raise InputError.single("--stakeholder", "selects a check sheet: use it with --format xlsx, csv or md")
    if format_ is ReportFormat.xlsx and output is None:
        raise InputError.single("--output", "XLSX needs an output file: -o sheet.xlsx / XLSX には -o が必要です")
    if import_sheet:
        if stakeholder is not None:
            from machimori.governance.model import load_model

            workflow.check_stakeholder(load_model(model_path, catalog), stakeholder)
        summary = workflow.import_sheets(model_path, import_sheet, catalog)
        err.print(f"{', '.join(map(str, import_sheet))}: {summary} → {model_path}", markup=False)
    assessment, model = workflow.run(model_path, catalog, as_of=date)
    progress = None
    if baseline is not None:
        from machimori.governance.progress import compare, describe

        progress = compare(baseline, assessment)
        err.print(describe(progress, lang), markup=False)
    if format_ is None:
        workflow.print_summary(out, assessment, lang)
    else:
        data = workflow.render(assessment, catalog, model, format_.value, lang, stakeholder, output, progress)
        if data is not None:
            _write_text(output, data)
        if output is not None:
            err.print(f"wrote {output}", markup=False)
    if fail_on is not None and workflow.has_finding_at_least(assessment, fail_on.value):
        raise typer.Exit(1)


def _output_format(format_: ReportFormat | None, output: Path | None) -> ReportFormat | None:
    """The format asked for, else the one the output file's suffix names."""
    if format_ is not None or output is None:
        return format_
    suffix = output.suffix.lstrip(".").lower()
    known = {f.value for f in ReportFormat}
    if suffix not in known:
        raise InputError.single(
            str(output), f"cannot tell the format from '.{suffix}': give --format ({', '.join(sorted(known))})"
        )
    return ReportFormat(suffix)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="報告書の出力先 / where reports go")] = Path("machimori-demo"),
    lang: LangOption = "ja",
    port: Annotated[int, typer.Option(help="サーバーのポート / the server's port")] = 8750,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="最後にサーバーを起動 / start the server at the end")
    ] = True,
) -> None:
    """デモ：架空の町「港町」で全機能を実演しサーバーを起動 / demo: every capability on the example town, then the server."""
    from machimori.cli_platform import run_server
    from machimori.demo import demo_settings, run_platform_demo
    from machimori.governance.demo import run_demo

    run_demo(out, out_dir, lang)
    settings = demo_settings(out_dir, port)
    tokens = run_platform_demo(out, settings)
    url = f"http://127.0.0.1:{port}"
    banner = [
        "",
        f"街守 machimori — {url}  (Ctrl-C で停止 / to stop)",
        f"  {url}/                      はじめに / start here",
        f"  {url}/api/v1/governance/report   評価レポート / assessment report",
        f"  {url}/api/v1/audit/checkpoint    署名付きチェックポイント / signed checkpoint",
        f"  {url}/openapi.json               API",
        *tokens,
        f'  curl -H "Authorization: Bearer <auditor token>" {url}/api/v1/events',
    ]
    if not serve_after:
        for line in banner:
            out.print(line, markup=False)
        return
    run_server(settings, banner)


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError.single("--as-of", f"'{value}' is not a date (expected YYYY-MM-DD)") from None


def _write_text(path: Path | None, text: str) -> None:
    if path is None:
        sys.stdout.write(text)
    else:
        write_user_file(path, text)


def main() -> None:
    """Run the CLI; a user's mistake prints one line per problem and exits 2, never a traceback."""
    try:
        app()
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"machimori: {problem}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
