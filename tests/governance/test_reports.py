"""The HTML report and the check sheets: rendering, and filled sheets read back into the model file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from machimori import yamlfile
from machimori.diagnostics import InputError
from machimori.governance.assessment import Assessment, assess
from machimori.governance.catalog import Catalog
from machimori.governance.catalog.loader import build_catalog
from machimori.governance.model import CityModel, load_model
from machimori.governance.reports.html import render_html
from machimori.governance.reports.sheet_read import META_SHEET
from machimori.governance.reports.sheets import (
    apply_sheet,
    apply_sheets,
    read_sheet,
    write_csv,
    write_markdown,
    write_xlsx,
)

AS_OF = dt.date(2026, 12, 1)

CATALOG = """
guideline_categories:
  - {id: governance, code: G, name: {ja: ガバナンス, en: Governance}, description: {ja: 体制, en: Organisation}}
  - {id: service, code: S, name: {ja: サービス, en: Service}, description: {ja: サービス, en: Services}}
  - {id: city-os, code: O, name: {ja: 都市OS, en: City OS}, description: {ja: 都市OS, en: City OS}}
  - {id: asset, code: A, name: {ja: アセット, en: Asset}, description: {ja: 機器, en: Devices}}
cpsf_categories:
  - {code: GV, function: identify, name: {ja: ガバナンス, en: Governance}}
  - {code: SC, function: identify, name: {ja: サプライチェーン, en: Supply chain}}
  - {code: AM, function: identify, name: {ja: 資産管理, en: Asset management}}
  - {code: AC, function: protect, name: {ja: アクセス制御, en: Access control}}
  - {code: DS, function: protect, name: {ja: データセキュリティ, en: Data security}}
  - {code: AE, function: detect, name: {ja: 異常とイベント, en: Anomalies and events}}
requirements:
  - id: CPS.GV-1
    title: {ja: セキュリティポリシーを定める, en: Set a security policy}
    summary: {ja: 方針を文書にする, en: Write the policy down}
    categories: [governance]
    provenance: verified
  - id: CPS.SC-1
    title: {ja: 委託先の要件を定める, en: Set requirements for contractors}
    summary: {ja: 契約で求める, en: Require it by contract}
    categories: [governance]
    provenance: reconstructed
  - id: CPS.AM-1
    title: {ja: 資産の一覧を持つ, en: Keep an inventory}
    summary: {ja: 機器と所有者を記録する, en: Record devices and owners}
    categories: [governance, asset, city-os]
    provenance: inferred
  - id: CPS.AC-1
    title: {ja: 利用者を認証する, en: Authenticate users}
    summary: {ja: 認証する, en: Authenticate}
    categories: [service, city-os]
    provenance: verified
  - id: CPS.DS-3
    title: {ja: 通信を暗号化する, en: Encrypt data in transit}
    summary: {ja: TLS を使う, en: Use TLS}
    categories: [city-os, asset, service]
    provenance: verified
  - id: CPS.AE-1
    title: {ja: 異常を検知する, en: Detect anomalies}
    summary: {ja: 監視する, en: Monitor}
    categories: [asset]
    provenance: inferred
risks:
  - id: R-TEST-1
    incident: {ja: センサーの乗っ取り, en: Sensor hijacked}
    threat: {ja: 攻撃者, en: Attacker}
    vulnerability: {ja: 監視なし, en: No monitoring}
    requirements: [CPS.AE-1, CPS.DS-3]
    likelihood: 3
    impact: 4
    applies_to: {element: component, where: {category: [asset]}}
    source: {document: test}
"""

MODEL = """\
# 試験町の都市モデル — the test town's model
city:
  id: testtown
  name: {ja: 試験町, en: Test Town}
  promoter: town

stakeholders:
  - id: town          # 推進主体 promoter
    name: {ja: 試験町役場, en: Test Town Office}
    kind: promoter
    incident_contact: {name: CSIRT, email: csirt@example.jp}
  - id: osop
    kind: city-os-operator
    incident_contact: {name: OS, email: os@example.jp}
    agreements:
      - {kind: data-handling, with: town}
  - id: care
    kind: service-provider
    agreements:
      - {kind: data-handling, with: town}
  - id: sub1
    kind: subcontractor
    parent: care
components:
  - id: sensor
    name: "気温センサー"
    category: asset
    owner: town
    operator: osop
  - id: broker
    category: city-os
    owner: town
    operator: osop
  - id: app
    category: service
    owner: care
    operator: sub1
datasets:
  - {id: air, data_type: open}
  - {id: residents, data_type: closed, personal: true, owner: care}
flows:
  - {id: f1, from: sensor, to: broker, dataset: air, encrypted: true, authenticated: true}
  - {id: f2, from: broker, to: app, dataset: residents, encrypted: false, authenticated: true}
statuses:
  # 市全体の既定 — the city-wide default
  - requirement: CPS.GV-1
    status: partial
    responsible: [town]
    accountable: [town]
  - requirement: CPS.DS-3
    component: broker
    status: planned   # 来年度 next year
    due: 2027-03-31
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog([yamlfile.parse(CATALOG.encode(), "test-catalog.yaml")])


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(MODEL, encoding="utf-8")
    return path


def _load(path: Path, catalog: Catalog) -> tuple[Assessment, CityModel]:
    model = load_model(path, catalog)
    return assess(model, catalog, as_of=AS_OF), model


def _targets(assessment: Assessment) -> dict[str, Any]:
    return {t.key: t for t in assessment.targets}


def _fill_xlsx(path: Path, edits: dict[str, dict[str, Any]]) -> None:
    """Edit cells as a user would in a spreadsheet: find the row by its key, the column by its header."""
    workbook = openpyxl.load_workbook(path)
    done = set()
    for sheet in workbook.worksheets[1:-1]:
        headers = {str(c.value): c.column for c in sheet[1]}
        for row in sheet.iter_rows(min_row=2):
            key = row[0].value
            if key in edits:
                for header, value in edits[key].items():
                    column = next(col for name, col in headers.items() if header in name)
                    sheet.cell(row[0].row, column, value)
                done.add(key)
    assert done == set(edits), f"rows not found: {set(edits) - done}"
    workbook.save(path)


# --- HTML -------------------------------------------------------------------------------------------------------


def test_html_has_every_section_in_both_languages(model_path: Path, catalog: Catalog) -> None:
    assessment, model = _load(model_path, catalog)
    html = render_html(assessment, catalog, model, "ja")
    assert '<meta charset="utf-8">' in html
    assert '<html lang="ja">' in html
    assert "Noto Sans JP" in html and "Hiragino" in html and "Meiryo" in html
    for heading in (
        "概要 Summary",
        "充足率 Coverage",
        "指摘事項 Findings",
        "対策の不足（優先順） Gaps, ranked",
        "責任分担（RACI） Responsibilities (RACI)",
        "サプライチェーン Supply chain",
        "リスク Risks",
    ):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<svg") == 2
    assert "試験町" in html and "2026-12-01" in html
    assert "セキュリティポリシーを定める" in html  # requirement titles in the report's language
    assert "再構成 reconstructed 1" in html  # provenance note in the footer
    assert "公式の文言ではありません" in html
    english = render_html(assessment, catalog, model, "en")
    assert "<h2>Summary 概要</h2>" in english and "Set a security policy" in english


def test_html_is_self_contained(model_path: Path, catalog: Catalog) -> None:
    assessment, model = _load(model_path, catalog)
    html = render_html(assessment, catalog, model, "en").lower()
    assert "<script" not in html
    assert "<link" not in html and "src=" not in html and "@import" not in html and "url(" not in html
    assert "https://" not in html


def test_html_content(model_path: Path, catalog: Catalog) -> None:
    assessment, model = _load(model_path, catalog)
    html = render_html(assessment, catalog, model, "ja")
    # sub1 handles personal data with no agreement up the chain: flagged in the supply-chain tree
    assert 'class="flagged"' in html
    flagged = html.split('class="flagged"', 1)[1].split("</li>", 1)[0]
    assert "sub1" in flagged and "再委託先" in flagged
    assert "R-TEST-1" in html and "センサーの乗っ取り" in html
    assert 'class="cell">RA<' in html  # town is responsible and accountable for CPS.GV-1
    assert "subcontractor-without-agreement" in html


def test_html_escapes_names(model_path: Path, catalog: Catalog) -> None:
    text = model_path.read_text(encoding="utf-8").replace('"気温センサー"', '"<script>alert(1)</script>"')
    model_path.write_text(text, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    html = render_html(assessment, catalog, model, "ja")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_caps_the_gap_list(model_path: Path, catalog: Catalog) -> None:
    assessment, model = _load(model_path, catalog)
    assessment.gaps = assessment.gaps * 100
    html = render_html(assessment, catalog, model, "en")
    assert f"{len(assessment.gaps) - 200} more not shown" in html


# --- XLSX -------------------------------------------------------------------------------------------------------


def test_xlsx_structure(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "ja")
    workbook = openpyxl.load_workbook(out)
    assert workbook.sheetnames == [
        "表紙 Cover",
        "ガバナンス Governance",
        "サービス Service",
        "都市OS City OS",
        "アセット Asset",
        META_SHEET,
    ]
    assert all(len(name) <= 31 for name in workbook.sheetnames)
    assert workbook[META_SHEET].sheet_state == "hidden"
    meta = {row[0]: row[1] for row in workbook[META_SHEET].iter_rows(values_only=True)}
    assert meta["city"] == "testtown" and len(meta["model_fingerprint"]) == len("sha256:") + 64
    cover = "\n".join(str(v) for row in workbook["表紙 Cover"].iter_rows(values_only=True) for v in row if v)
    assert "試験町" in cover and "2026-12-01" in cover and "記入のしかた" in cover and "How to fill in" in cover
    governance = workbook["ガバナンス Governance"]
    headers = [c.value for c in governance[1]]
    assert "状態 / Status" in headers and "キー / Key" in headers and "期限 / Due" in headers
    assert governance.freeze_panes == "A2"
    validations = governance.data_validations.dataValidation
    assert len(validations) == 1 and validations[0].type == "list"
    assert "not-implemented" in validations[0].formula1 and "I2" in str(validations[0].sqref)
    keys = [row[0] for row in governance.iter_rows(min_row=2, values_only=True)]
    # four stakeholders × three governance requirements
    assert len(keys) == 12 and "CPS.GV-1@stakeholder:town" in keys
    asset = [row[0] for row in workbook["アセット Asset"].iter_rows(min_row=2, values_only=True)]
    assert sorted(asset) == ["CPS.AE-1@component:sensor", "CPS.AM-1@component:sensor", "CPS.DS-3@component:sensor"]
    assert sum(ws.max_row - 1 for ws in workbook.worksheets[1:-1]) == len(assessment.targets)


def test_xlsx_never_writes_formulas(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    text = model_path.read_text(encoding="utf-8").replace('"気温センサー"', '"=HYPERLINK(\\"http://x\\")"')
    model_path.write_text(text, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    sheet = openpyxl.load_workbook(out)["Asset アセット"]
    names = [c for c in sheet["H"] if c.value and str(c.value).startswith("=")]
    assert names and all(c.data_type == "s" for c in names)


def test_xlsx_round_trip(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "ja")
    _fill_xlsx(
        out,
        {
            "CPS.AE-1@component:sensor": {
                "状態": "implemented",
                "実行責任": "osop、town",
                "根拠": "監視記録 2026-11",
                "期限": dt.date(2027, 1, 31),
            },
            "CPS.DS-3@component:broker": {"状態": "implemented", "根拠": "TLS 1.3 設定"},
            "CPS.GV-1@stakeholder:care": {"状態": "implemented"},
        },
    )
    sheet = read_sheet(out)
    assert sheet.city == "testtown" and sheet.kind == "xlsx"
    result = apply_sheet(model_path, sheet, catalog)
    assert (result.updated, result.added) == (1, 2)
    assert result.unchanged == len(assessment.targets) - 3

    after, _ = _load(model_path, catalog)
    targets = _targets(after)
    sensor = targets["CPS.AE-1@component:sensor"]
    assert (sensor.status, sensor.responsible, sensor.evidence, sensor.due) == (
        "implemented",
        ("osop", "town"),
        "監視記録 2026-11",
        dt.date(2027, 1, 31),
    )
    broker = targets["CPS.DS-3@component:broker"]
    assert (broker.status, broker.evidence, broker.due) == ("implemented", "TLS 1.3 設定", dt.date(2027, 3, 31))
    care = targets["CPS.GV-1@stakeholder:care"]
    # the new record keeps what the row showed (inherited from the city-wide record) besides the new status
    assert (care.status, care.responsible, care.accountable) == ("implemented", ("town",), ("town",))
    assert targets["CPS.GV-1@stakeholder:osop"].status == "partial"  # untouched rows stay as they were

    text = model_path.read_text(encoding="utf-8")
    for comment in (
        "# 試験町の都市モデル — the test town's model",
        "# 推進主体 promoter",
        "# 市全体の既定",
        "# 来年度 next year",
    ):
        assert comment in text
    assert text.startswith(MODEL.split("statuses:")[0])  # untouched sections keep their layout and quotes
    assert "  - requirement: CPS.AE-1\n    component: sensor\n    status: implemented\n" in text
    assert "responsible: [osop, town]" in text
    assert not list(tmp_path.glob(".city.yaml.*"))  # no temporary file left behind

    again = apply_sheet(model_path, read_sheet(out), catalog)  # nothing left to change
    assert (again.updated, again.added, again.unchanged) == (0, 0, len(assessment.targets))
    assert model_path.read_text(encoding="utf-8") == text


def test_blank_and_unchanged_rows_write_nothing(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    _fill_xlsx(out, {"CPS.GV-1@stakeholder:town": {"Status": None, "Responsible": None}})
    before = model_path.read_bytes()
    result = apply_sheet(model_path, read_sheet(out), catalog)
    assert (result.updated, result.added, result.unchanged) == (0, 0, len(assessment.targets))
    assert model_path.read_bytes() == before


def test_stakeholder_rows_do_not_silently_change_component_rows(
    model_path: Path, catalog: Catalog, tmp_path: Path
) -> None:
    """A stakeholder-level record also governs the components it runs; rows the sheet left alone keep their values."""
    city_wide = "  - {requirement: CPS.AM-1, status: partial, responsible: [town]}\n"
    model_path.write_text(model_path.read_text(encoding="utf-8") + city_wide, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    _fill_xlsx(out, {"CPS.AM-1@stakeholder:osop": {"Status": "implemented", "Accountable": "osop"}})
    result = apply_sheet(model_path, read_sheet(out), catalog)
    assert (result.updated, result.added, result.pinned) == (0, 1, 2)
    targets = _targets(_load(model_path, catalog)[0])
    assert targets["CPS.AM-1@stakeholder:osop"].status == "implemented"
    for component in ("sensor", "broker"):  # run by osop, shown as partial on the sheet: still partial
        target = targets[f"CPS.AM-1@component:{component}"]
        assert (target.status, target.responsible) == ("partial", ("town",))
    again = apply_sheet(model_path, read_sheet(out), catalog)
    assert (again.updated, again.added, again.pinned) == (0, 0, 0)


def test_unknown_rows_take_the_stakeholders_status(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    _fill_xlsx(out, {"CPS.AM-1@stakeholder:osop": {"Status": "implemented"}})
    result = apply_sheet(model_path, read_sheet(out), catalog)
    assert (result.added, result.pinned) == (1, 0)
    targets = _targets(_load(model_path, catalog)[0])
    assert targets["CPS.AM-1@component:sensor"].status == "implemented"  # 'unknown' on the sheet stated nothing
    assert apply_sheet(model_path, read_sheet(out), catalog).added == 0


# --- CSV and Markdown -------------------------------------------------------------------------------------------


def test_csv_round_trip(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    text = write_csv(assessment, catalog, model, "ja")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = rows[0]
    assert header[0] == "キー / Key" and header[-2:] == ["city", "model_fingerprint"]
    assert len(rows) == len(assessment.targets) + 1
    assert all(r[-2] == "testtown" and r[-1].startswith("sha256:") for r in rows[1:])
    status, responsible, due = (
        header.index("状態 / Status"),
        header.index("実行責任 R / Responsible R"),
        header.index("期限 / Due"),
    )
    for row in rows[1:]:
        if row[0] == "CPS.AM-1@component:broker":
            row[status], row[responsible], row[due] = "not-applicable", "osop", "2027/02/01"
        if row[0] == "CPS.SC-1@stakeholder:sub1":
            row[status] = "planned"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    filled = tmp_path / "filled.csv"
    filled.write_bytes(buffer.getvalue().encode("cp932"))  # as Excel saves 'CSV' in Japan
    sheet = read_sheet(filled)
    assert sheet.kind == "csv" and sheet.city == "testtown"
    result = apply_sheet(model_path, sheet, catalog)
    assert (result.updated, result.added) == (0, 2)
    targets = _targets(_load(model_path, catalog)[0])
    broker = targets["CPS.AM-1@component:broker"]
    assert (broker.status, broker.responsible, broker.due) == ("not-applicable", ("osop",), dt.date(2027, 2, 1))
    assert targets["CPS.SC-1@stakeholder:sub1"].status == "planned"
    assert "# 来年度 next year" in model_path.read_text(encoding="utf-8")


def test_csv_guards_formulas(model_path: Path, catalog: Catalog) -> None:
    text = model_path.read_text(encoding="utf-8").replace('"気温センサー"', '"=1+1"')
    model_path.write_text(text, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    assert ",'=1+1," in write_csv(assessment, catalog, model, "en")


def test_markdown(model_path: Path, catalog: Catalog) -> None:
    assessment, model = _load(model_path, catalog)
    text = write_markdown(assessment, catalog, model, "ja")
    assert text.count("\n## ") == 4
    assert "## ガバナンス Governance" in text and "| 状態 / Status |" in text
    assert "| CPS.GV-1 | セキュリティポリシーを定める |" in text
    assert sum(1 for line in text.splitlines() if line.startswith("| CPS.")) == len(assessment.targets)


# --- rejected sheets --------------------------------------------------------------------------------------------


def test_sheet_from_another_model_is_rejected(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    for city, extra in (("othertown", ""), ("testtown", "  - {id: extra, category: asset, owner: town}\n")):
        other = other_dir / f"{city}.yaml"
        other.write_text(
            MODEL.replace("id: testtown", f"id: {city}").replace("datasets:\n", extra + "datasets:\n"), "utf-8"
        )
        assessment, model = _load(other, catalog)
        out = other_dir / f"{city}.xlsx"
        write_xlsx(out, assessment, catalog, model, "ja")
        before = model_path.read_bytes()
        with pytest.raises(InputError) as caught:
            apply_sheet(model_path, read_sheet(out), catalog)
        assert "another model" in str(caught.value) and "別のモデル" in str(caught.value)
        assert caught.value.problems[0].file == str(out)
        assert model_path.read_bytes() == before
    csv_path = other_dir / "other.csv"
    csv_path.write_text(write_csv(assessment, catalog, model, "en"), encoding="utf-8")
    with pytest.raises(InputError, match="another model"):
        apply_sheet(model_path, read_sheet(csv_path), catalog)


def test_bad_cells_are_located(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    _fill_xlsx(out, {"CPS.AE-1@component:sensor": {"Status": "implmented", "Due": "2026-13-45"}})
    with pytest.raises(InputError) as caught:
        read_sheet(out)
    problems = caught.value.problems
    assert len(problems) == 2
    by_column = {p.column: p for p in problems}
    assert all(p.file == f"{out}[Asset アセット]" and p.line >= 2 for p in problems)
    assert "unknown status 'implmented' (did you mean 'implemented'?)" in by_column[9].message
    assert by_column[9].message.endswith(f"[I{problems[0].line}]")
    assert "'2026-13-45' is not a date" in by_column[15].message
    assert str(by_column[9]).startswith(f"{out}[Asset アセット]:{problems[0].line}:9: ")


def test_unknown_stakeholder_is_located(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "ja")
    _fill_xlsx(out, {"CPS.GV-1@stakeholder:osop": {"状態": "implemented", "説明責任": "tonw"}})
    before = model_path.read_bytes()
    with pytest.raises(InputError) as caught:
        apply_sheet(model_path, read_sheet(out), catalog)
    (problem,) = caught.value.problems
    assert problem.file == f"{out}[ガバナンス Governance]" and problem.column == 11
    assert "unknown stakeholder 'tonw' (did you mean 'town'?)" in problem.message
    assert model_path.read_bytes() == before


def test_bad_csv_cells_are_located(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    lines = write_csv(assessment, catalog, model, "en").splitlines()
    header = next(csv.reader([lines[0].lstrip("\ufeff")]))
    row = next(csv.reader([lines[3]]))
    row[header.index("Status / 状態")] = "done"
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    lines[3] = buffer.getvalue().strip()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_sheet(bad)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.column) == (str(bad), 4, 9)
    assert "unknown status 'done'" in problem.message


def test_wrong_files(tmp_path: Path) -> None:
    cases = {
        "report.pdf": (b"%PDF-1.7", "wrong file type '.pdf'"),
        "fake.xlsx": (b"not a zip", "not an XLSX file"),
        "broken.xlsx": (b"PK\x03\x04garbage", "not a readable XLSX file"),
        "old.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Excel 97-2003"),
        "empty.csv": (b"", "no header row"),
        "other.csv": ("名前,値\nx,1\n".encode(), "missing column 'キー / Key'"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError, match=message):
            read_sheet(path)
    with pytest.raises(InputError, match="file not found"):
        read_sheet(tmp_path / "missing.xlsx")
    workbook = openpyxl.Workbook()
    workbook.active.append(["キー / Key", "状態 / Status"])
    workbook.save(tmp_path / "nometa.xlsx")
    with pytest.raises(InputError, match="not a machimori check sheet"):
        read_sheet(tmp_path / "nometa.xlsx")


# --- the stakeholder filter -------------------------------------------------------------------------------------


def test_stakeholder_filter(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    expected = {
        t.key
        for t in assessment.targets
        if t.scope_id in ("osop", "sensor", "broker")  # itself, and the components it operates
        or "osop" in (*t.responsible, *t.accountable, *t.consulted, *t.informed)
    }
    rows = list(csv.reader(io.StringIO(write_csv(assessment, catalog, model, "ja", "osop").lstrip("\ufeff"))))[1:]
    assert {r[0] for r in rows} == expected
    assert not any(r[0].endswith((":app", ":care", ":sub1", ":town")) for r in rows)
    out = tmp_path / "osop.xlsx"
    write_xlsx(out, assessment, catalog, model, "ja", stakeholder="osop")
    workbook = openpyxl.load_workbook(out)
    keys = {row[0] for ws in workbook.worksheets[1:-1] for row in ws.iter_rows(min_row=2, values_only=True)}
    assert keys == expected
    assert len(workbook.sheetnames) == 6  # every category keeps its sheet, empty or not
    # a stakeholder's filled sheet still reads back into the whole model
    _fill_xlsx(out, {"CPS.AC-1@component:broker": {"状態": "partial"}})
    result = apply_sheet(model_path, read_sheet(out), catalog)
    assert (result.updated, result.added) == (0, 1)
    assert _targets(_load(model_path, catalog)[0])["CPS.AC-1@component:broker"].status == "partial"
    # and osop as named in a role reaches rows of components it does not run
    text = model_path.read_text(encoding="utf-8") + "  - {requirement: CPS.AC-1, component: app, consulted: [osop]}\n"
    model_path.write_text(text, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    assert "CPS.AC-1@component:app" in write_csv(assessment, catalog, model, "en", "osop")


# --- review fixes -----------------------------------------------------------------------------------------------


def _csv_with_status(model_path: Path, catalog: Catalog, tmp_path: Path, status: str) -> Path:
    assessment, model = _load(model_path, catalog)
    rows = list(csv.reader(io.StringIO(write_csv(assessment, catalog, model, "en").lstrip("\ufeff"))))
    column = rows[0].index("Status / 状態")
    rows[3][column] = status
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path = tmp_path / "filled.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize("text", ["not yet implemented", "partially implemented", "not implemented (planned)"])
def test_free_text_status_is_refused(model_path: Path, catalog: Catalog, tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError) as caught:
        read_sheet(_csv_with_status(model_path, catalog, tmp_path, text))
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (4, 9)
    assert f"unknown status '{text}'" in problem.message


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Not Implemented", "not-implemented"),
        ("ＰＬＡＮＮＥＤ", "planned"),
        ("未実装", "not-implemented"),
        ("n/a", "not-applicable"),
    ],
)
def test_whole_cell_statuses_and_aliases_are_read(
    model_path: Path, catalog: Catalog, tmp_path: Path, text: str, status: str
) -> None:
    rows = read_sheet(_csv_with_status(model_path, catalog, tmp_path, text)).rows
    assert next(row for row in rows if row.location.line == 4).status == status


def test_header_below_inserted_title_rows(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    _fill_xlsx(out, {"CPS.AE-1@component:sensor": {"Status": "implemented", "Due": "bad date"}})
    workbook = openpyxl.load_workbook(out)
    workbook["Asset アセット"].insert_rows(1, 2)
    workbook["Asset アセット"]["A1"] = "Test Town — asset checks"
    workbook.save(out)
    with pytest.raises(InputError) as caught:
        read_sheet(out)
    (problem,) = caught.value.problems  # the row is read, and located where it now is
    row = next(r for r in range(1, 10) if workbook["Asset アセット"].cell(r, 1).value == "CPS.AE-1@component:sensor")
    assert (problem.file, problem.line, problem.column) == (f"{out}[Asset アセット]", row, 15)
    _fill_xlsx_at(out, "Asset アセット", row, 15, None)
    result = apply_sheet(model_path, read_sheet(out), catalog)
    assert result.added == 1
    assert _targets(_load(model_path, catalog)[0])["CPS.AE-1@component:sensor"].status == "implemented"


def _fill_xlsx_at(path: Path, sheet: str, row: int, column: int, value: Any) -> None:
    workbook = openpyxl.load_workbook(path)
    workbook[sheet].cell(row, column).value = value
    workbook.save(path)


def test_category_sheet_without_header_is_an_error(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    workbook = openpyxl.load_workbook(out)
    workbook["Asset アセット"].delete_rows(1)
    workbook.save(out)
    with pytest.raises(InputError) as caught:
        read_sheet(out)
    (problem,) = caught.value.problems
    assert problem.file == f"{out}[Asset アセット]" and "no header row" in problem.message


def test_apply_sheets_checks_every_sheet_then_writes_once(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    first, second, stale = tmp_path / "osop.xlsx", tmp_path / "care.xlsx", tmp_path / "stale.xlsx"
    write_xlsx(first, assessment, catalog, model, "en", stakeholder="osop")
    write_xlsx(second, assessment, catalog, model, "en", stakeholder="care")
    write_xlsx(stale, assessment, catalog, model, "en", stakeholder="care")
    _fill_xlsx(first, {"CPS.AE-1@component:sensor": {"Status": "implemented"}})
    _fill_xlsx(second, {"CPS.AC-1@component:app": {"Status": "partial", "Responsible": "nobody"}})
    before = model_path.read_bytes()
    with pytest.raises(InputError) as caught:  # the second sheet's error stops the first sheet's change too
        apply_sheets(model_path, [read_sheet(first), read_sheet(second)], catalog)
    assert "unknown stakeholder 'nobody'" in str(caught.value)
    assert model_path.read_bytes() == before
    _fill_xlsx(second, {"CPS.AC-1@component:app": {"Status": "partial", "Responsible": "care"}})
    _fill_xlsx(stale, {"CPS.AC-1@component:app": {"Status": "planned"}})
    with pytest.raises(InputError, match="changed differently"):
        apply_sheets(model_path, [read_sheet(second), read_sheet(stale)], catalog)
    assert model_path.read_bytes() == before
    result = apply_sheets(model_path, [read_sheet(first), read_sheet(second)], catalog)
    assert (result.updated, result.added) == (0, 2)
    targets = _targets(_load(model_path, catalog)[0])
    assert targets["CPS.AE-1@component:sensor"].status == "implemented"
    assert (targets["CPS.AC-1@component:app"].status, targets["CPS.AC-1@component:app"].responsible) == (
        "partial",
        ("care",),
    )


def test_json_models_are_not_rewritten(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    data = yamlfile.parse(MODEL.encode(), "m.yaml").data
    for name, text in (
        ("city.json", json.dumps(data, default=str, ensure_ascii=False, indent=2)),
        ("json-text.yaml", json.dumps(data, default=str, ensure_ascii=False)),
    ):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assessment, model = _load(path, catalog)
        out = tmp_path / f"{name}.xlsx"
        write_xlsx(out, assessment, catalog, model, "en")
        _fill_xlsx(out, {"CPS.AE-1@component:sensor": {"Status": "implemented"}})
        with pytest.raises(InputError, match="YAML models only; convert with"):
            apply_sheet(path, read_sheet(out), catalog)
        assert path.read_text(encoding="utf-8") == text


def test_shared_due_dates_are_not_written_as_anchors(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    city_wide = "  - {requirement: CPS.AM-1, status: partial, due: 2027-06-30}\n"
    model_path.write_text(model_path.read_text(encoding="utf-8") + city_wide, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    edits: dict[str, dict[str, Any]] = {
        f"CPS.AM-1@component:{c}": {"Status": "implemented"} for c in ("sensor", "broker")
    }
    edits.update({"CPS.AE-1@component:sensor": {"Due": dt.date(2027, 9, 30)}})
    edits.update({"CPS.DS-3@component:sensor": {"Due": dt.date(2027, 9, 30)}})
    _fill_xlsx(out, edits)
    assert apply_sheet(model_path, read_sheet(out), catalog).added == 4
    text = model_path.read_text(encoding="utf-8")
    assert text.count("2027-06-30") == 3 and text.count("2027-09-30") == 2
    assert "&id" not in text and "*id" not in text


def test_xlsx_drops_what_xml_cannot_hold(model_path: Path, catalog: Catalog, tmp_path: Path) -> None:
    assessment, model = _load(model_path, catalog)
    sensor = next(i for i, c in enumerate(model.components) if c.id == "sensor")
    model.components[sensor] = model.components[sensor].model_copy(
        update={"name": "a\ud800b\udfffc\ufffed\uffffe\x01\x1ff\tg\U0001f600"}
    )
    out = tmp_path / "sheet.xlsx"
    write_xlsx(out, assessment, catalog, model, "en")
    names = {c.value for c in openpyxl.load_workbook(out)["Asset アセット"]["H"]}
    assert "abcdef\tg\U0001f600" in names


def test_deep_supply_chain_renders(model_path: Path, catalog: Catalog) -> None:
    tiers = "".join(
        f"  - {{id: t{i}, kind: subcontractor, parent: {f't{i - 1}' if i else 'care'}}}\n" for i in range(400)
    )
    text = model_path.read_text(encoding="utf-8").replace("components:\n", tiers + "components:\n", 1)
    model_path.write_text(text, encoding="utf-8")
    assessment, model = _load(model_path, catalog)
    html = render_html(assessment, catalog, model, "en")

    class Depth(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []
            self.deepest = 0
            self.parents: dict[str, int] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("ul", "li"):
                self.open.append(tag)
                self.deepest = max(self.deepest, self.open.count("ul"))

        def handle_endtag(self, tag: str) -> None:
            if tag in ("ul", "li"):
                assert self.open.pop() == tag

        def handle_data(self, data: str) -> None:
            if data.startswith("t") and data[1:].isdigit():
                self.parents[data] = self.open.count("ul")

    parser = Depth()
    parser.feed(html)
    assert parser.open == []
    assert parser.deepest == 401  # care at the top, then 400 tiers below it
    assert parser.parents["t399"] == parser.parents["t0"] + 399
