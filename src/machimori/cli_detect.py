"""Commands of network-side detection: score flows, turn captures into conn.log, evaluate, watch a live log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from machimori.cli_platform import ConfigOption, DataDirOption, settings_from
from machimori.diagnostics import InputError

if TYPE_CHECKING:
    from machimori.detection.batch import ScoringRun
    from machimori.detection.indicators import IndicatorSet
    from machimori.detection.reading import ReadReport
    from machimori.detection.service import Submission

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
detect_app = typer.Typer(
    help="検知 / network-side detection of compromised IoT devices (conn.log, pcap).", no_args_is_help=True
)

InputsArgument = Annotated[
    list[Path], typer.Argument(help="conn.log (TSV か JSON) または pcap / conn.log or pcap files")
]
BaselineOption = Annotated[
    list[Path] | None,
    typer.Option("--baseline", help="正常と分かっている通信 (学習用) / known-benign traffic to learn from"),
]
IndicatorsOption = Annotated[
    list[Path] | None,
    typer.Option("--indicators", help="C&C の指標 (STIX 2.1 または一覧) / C&C indicators (STIX 2.1 or a list)"),
]
TrainingOption = Annotated[
    float | None,
    typer.Option(
        "--training-window",
        min=1,
        help="入力の最初の N 秒だけから学習 / learn only from the input's first N seconds, then hold still",
    ),
]
DarknetOption = Annotated[
    list[str] | None, typer.Option("--darknet", help="街の未使用アドレス帯 (CIDR) / the town's unused ranges")
]


def _indicators(paths: list[Path]) -> IndicatorSet | None:
    from machimori.detection.indicators import load_indicator_files

    indicators = load_indicator_files(paths, lambda path, report: _report_reading(f"indicators / 指標 {path}", report))
    if indicators is not None:
        err.print(f"  指標 {len(indicators)} 件 / {len(indicators)} indicators", markup=False)
    return indicators


def _darknet(ranges: list[str]) -> list[str]:
    import ipaddress

    for network in ranges:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise InputError.single("--darknet", f"not a network: {network!r} / ネットワークではありません") from None
    return ranges


def _report_reading(label: str, report: ReadReport) -> None:
    err.print(f"{label}: {report.summary()}", markup=False)
    for problem in report.examples[:5]:
        err.print(f"  {problem}", markup=False)


@detect_app.command("score")
def score(
    inputs: InputsArgument,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="スコアの CSV / scores CSV (uid,device,score,reasons)")
    ],
    baseline: BaselineOption = None,
    indicators: IndicatorsOption = None,
    darknet: DarknetOption = None,
    training_window: TrainingOption = None,
    findings: Annotated[
        Path | None, typer.Option("--findings", help="検知結果を JSON で書き出す / write the findings as JSON")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """フローごとに疑わしさを採点 / score every flow: one row per flow, higher is more suspicious."""
    from machimori.detection.batch import score_files

    settings = settings_from(config, data_dir)
    indicator_set = _indicators(list(indicators or settings.detection_indicators))
    ranges = _darknet(list(darknet or settings.detection_darknet))
    with _open_output(output) as handle:
        run = score_files(
            inputs,
            handle,
            baseline_files=list(baseline or []),
            indicators=indicator_set,
            darknet=ranges,
            threshold=settings.detection_threshold,
            training_window=training_window,
        )
    _print_run(run, bool(baseline))
    if findings is not None:
        from machimori.diagnostics import write_user_file

        text = json.dumps([finding.to_dict() for finding in run.findings], ensure_ascii=False, indent=2)
        write_user_file(findings, text + "\n")


def _print_run(run: ScoringRun, trained: bool) -> None:
    if trained:
        _report_reading("baseline / 学習", run.baseline)
        err.print(f"  {run.learned} フローを学習 / learned {run.learned} flows", markup=False)
    else:
        err.print("ベースライン: 入力から逐次学習 / baseline: learned online from the input", markup=False)
    _report_reading("input / 入力", run.inputs)
    err.print(f"{run.scored} フローを採点 / scored {run.scored} flows", markup=False)
    err.print(f"検知 {len(run.findings)} 件 / {len(run.findings)} findings", markup=False)
    for finding in run.findings[:20]:
        err.print(f"  [{finding.severity.name.lower()}] {finding.summary('ja')}", markup=False)
        err.print(f"  {' ' * (len(finding.severity.name) + 2)} {finding.summary('en')}", markup=False)


@detect_app.command("flows")
def flows(
    inputs: InputsArgument,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="conn.log (TSV) の出力先 / conn.log to write")
    ] = None,
) -> None:
    """pcap を Zeek の conn.log に変換 / turn captures (or logs) into a Zeek TSV conn.log."""
    from machimori.detection.reading import ReadReport
    from machimori.detection.sources import read_flows
    from machimori.detection.zeek import conn_log_header, conn_log_line

    report = ReadReport()
    handle = sys.stdout if output is None else _open_output(output)
    try:
        header_written = False
        for path in inputs:
            for flow in read_flows(path, report):
                if not header_written:
                    handle.write(conn_log_header(flow.ts))
                    header_written = True
                handle.write(conn_log_line(flow))
    finally:
        if output is not None:
            handle.close()
    _report_reading("input / 入力", report)


def _open_output(path: Path) -> IO[str]:
    """A file the user named, opened for writing; failing that, one clear error."""
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError.single(str(path), f"cannot write: {exc.strerror or exc} / 書き込めません") from None


@detect_app.command("watch")
def watch(
    log: Annotated[Path, typer.Argument(help="Zeek が書き続ける conn.log / the conn.log Zeek is writing")],
    from_start: Annotated[
        bool, typer.Option("--from-start/--from-end", help="既存の行も読む / read the lines already there")
    ] = False,
    poll: Annotated[float, typer.Option(help="新しい行を見る間隔 (秒) / seconds between looks for new lines")] = 1.0,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """成長する conn.log を監視し検知をイベントに / follow a growing conn.log; findings become events."""
    import signal
    import threading

    from machimori.detection.reading import ReadReport
    from machimori.detection.service import RegistryDirectory, detection_from_settings
    from machimori.detection.sources import follow_conn_log
    from machimori.gateway.service import open_registry
    from machimori.platform import open_platform

    platform = open_platform(settings_from(config, data_dir))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    report = ReadReport()
    try:
        detection = detection_from_settings(
            platform.settings, platform.events, RegistryDirectory(open_registry(platform))
        )
        err.print(f"監視中 / watching {log} (Ctrl-C で終了 / to stop)", markup=False)
        try:
            for flow in follow_conn_log(log, report, stop, poll=poll, from_start=from_start):
                _print_submission(detection.submit((flow,)))
        except KeyboardInterrupt:
            pass
        detection.close()
        _report_reading("input / 入力", report)
    finally:
        platform.close()


def _print_submission(submission: Submission) -> None:
    for finding in submission.opened:
        out.print(f"[{finding.severity.name.lower()}] {finding.summary('ja')}", markup=False)
        out.print(f"  {finding.summary('en')}", markup=False)
    for device in submission.quarantined:
        out.print(f"  → 隔離 / quarantined {device}", markup=False)


@detect_app.command("eval")
def evaluate_command(
    inputs: InputsArgument,
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            "--labels", help="ラベルのファイル (CSV uid,label[,detail]) / labels file; else the inputs' column"
        ),
    ] = None,
    scores: Annotated[
        Path | None, typer.Option("--scores", help="採点済みのスコア CSV / scores already made (else scored here)")
    ] = None,
    baseline: BaselineOption = None,
    indicators: IndicatorsOption = None,
    darknet: DarknetOption = None,
    training_window: TrainingOption = None,
    label_column: Annotated[str, typer.Option(help="ラベルの列 / the label column")] = "label",
    detail_column: Annotated[str, typer.Option(help="攻撃種別の列 / the attack-kind column")] = "detailed-label",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="採点したスコアを残す / keep the scores made here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON で出力 / print JSON")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """ラベル付きデータで検知器を評価 / evaluate the detectors on labelled data (ROC-AUC, PR-AUC, recall at FPR)."""
    import tempfile

    from machimori.detection.batch import score_files
    from machimori.detection.evaluate import evaluate

    settings = settings_from(config, data_dir)
    workspace = tempfile.TemporaryDirectory(prefix="machimori-eval-")
    with workspace:
        if scores is None:
            scores = output or Path(workspace.name) / "scores.csv"
            with _open_output(scores) as handle:
                run = score_files(
                    inputs,
                    handle,
                    baseline_files=list(baseline or []),
                    indicators=_indicators(list(indicators or settings.detection_indicators)),
                    darknet=_darknet(list(darknet or settings.detection_darknet)),
                    threshold=settings.detection_threshold,
                    training_window=training_window,
                )
            _report_reading("input / 入力", run.inputs)
        report = evaluate(scores, list(labels or inputs), label_column=label_column, detail_column=detail_column)
    if as_json:
        out.print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), markup=False)
        return
    out.print(report.to_text("ja"), markup=False)
    out.print(markup=False)
    out.print(report.to_text("en"), markup=False)
