"""Run the ETSI NGSI-LD API conformance suite against a machimori hub and count passes per group.

    python tools/etsi_conformance.py --suite ../ngsi-ld-test-suite [--group Provision ...]

The suite (Robot Framework; ETSI's, public copy github.com/marek-mraz/ngsi-ld-test-suite, commit 1d442dc)
is not part of machimori and is never committed here: check it out beside the project and install its
requirements into its own virtualenv (`<suite>/.venv`). This script starts `machimori serve` on
127.0.0.1:9090 (the suite's default URL) with a fresh data directory and the conformance test setting on
(`MACHIMORI_HUB_CONFORMANCE_TENANT`: requests without a token act as a test service in test tenants only),
serves the suite's @context documents from a local folder (its payloads name them by internet address;
nothing is fetched), runs each group and prints passed / failed / total per group from Robot's output,
and the same for the cases outside the temporal API (those whose suite's source path does not name
"Temporal" and that carry no te-*/tea-* tag; machimori does not implement the temporal API).
`--report OUTPUT.xml …` prints the counts of an earlier run without running anything. Results: docs/conformance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import httpx

GROUPS = {
    "Provision": "TP/NGSI-LD/ContextInformation/Provision",
    "Consumption": "TP/NGSI-LD/ContextInformation/Consumption",
    "Subscription": "TP/NGSI-LD/ContextInformation/Subscription",
    "CommonBehaviours": "TP/NGSI-LD/CommonBehaviours",
    "jsonldContext": "TP/NGSI-LD/jsonldContext",
}
SUITE_CONTEXTS = "https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/"
PORT = 9090


def contexts_folder(suite: Path, folder: Path) -> Path:
    """The suite's @context documents under the URLs its payloads use, with a urls.json index."""
    folder.mkdir(parents=True, exist_ok=True)
    index = {}
    for document in sorted((suite / "resources" / "jsonld-contexts").glob("*.jsonld")):
        shutil.copy(document, folder / document.name)
        index[SUITE_CONTEXTS + document.name] = document.name
    (folder / "urls.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return folder


def start_hub(work: Path, contexts: Path, log: Path) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "MACHIMORI_DATA_DIR": str(work / "data"),
        "MACHIMORI_PORT": str(PORT),
        "MACHIMORI_HUB_CONFORMANCE_TENANT": "etsi",
        "MACHIMORI_HUB_CONTEXTS_DIR": str(contexts),
        "MACHIMORI_LOG_LEVEL": "WARNING",
    }
    hub = subprocess.Popen(
        [str(Path(sys.executable).parent / "machimori"), "serve"],
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/.well-known/openid-configuration", timeout=1)
            return hub
        except httpx.HTTPError:
            time.sleep(0.3)
    hub.kill()
    raise SystemExit(f"the hub did not start; see {log}")


def counts(output: Path) -> tuple[int, int]:
    """(passed, failed) test cases in a Robot output.xml."""
    root = ElementTree.parse(output).getroot()
    total = root.find("./statistics/total/stat")
    if total is None:
        return 0, 0
    return int(total.get("pass", 0)), int(total.get("fail", 0))


def split_counts(output: Path) -> dict[bool, tuple[int, int]]:
    """(passed, failed) test cases by whether they test the temporal API (True: their suite's source path names
    "Temporal", or a tag says so — te-*, tea-*, as the common-behaviour cases on /temporal do) or not (False)."""
    tally = {True: [0, 0], False: [0, 0]}

    def walk(suite: ElementTree.Element, temporal: bool) -> None:
        temporal = temporal or "Temporal" in (suite.get("source") or "")
        for test in suite.findall("test"):
            tags = [tag.text or "" for tag in test.iter("tag")]
            status = test.find("status")
            passed = status is not None and status.get("status") == "PASS"
            skipped = status is not None and status.get("status") == "SKIP"
            if not skipped:
                tally[temporal or any(tag.startswith(("te-", "tea-")) for tag in tags)][0 if passed else 1] += 1
        for child in suite.findall("suite"):
            walk(child, temporal)

    top = ElementTree.parse(output).getroot().find("suite")
    if top is not None:
        walk(top, False)
    return {kind: (values[0], values[1]) for kind, values in tally.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, required=True, help="checkout of the ETSI NGSI-LD test suite")
    parser.add_argument("--group", action="append", choices=sorted(GROUPS), help="groups to run (default: all)")
    parser.add_argument("--results", type=Path, default=Path("conformance-results"), help="Robot output folder")
    parser.add_argument("--exclude-tag", action="append", default=[], help="Robot tags to leave out")
    parser.add_argument("--report", type=Path, nargs="*", help="only print the counts of these output.xml files")
    args = parser.parse_args()
    if args.report:
        for output in args.report:
            split = split_counts(output)
            for label, (passed, failed) in (("all", counts(output)), ("outside temporal", split[False])):
                print(f"{output}: {label}: passed {passed} failed {failed} total {passed + failed}")
        return 0
    suite = args.suite.resolve()
    robot = suite / ".venv" / "bin" / "robot"
    if not robot.exists():
        print(f"{robot}: not found — install the suite's requirements into {suite / '.venv'}", file=sys.stderr)
        return 2
    results = args.results.resolve()
    with tempfile.TemporaryDirectory(prefix="machimori-conformance-") as temporary:
        work = Path(temporary)
        hub = start_hub(work, contexts_folder(suite, work / "contexts"), results.parent / "conformance-hub.log")
        try:
            rows = []
            for group in args.group or list(GROUPS):
                out = results / group
                command = [str(robot), "--outputdir", str(out), "--loglevel", "INFO", "--consolewidth", "100"]
                for tag in args.exclude_tag:
                    command += ["--exclude", tag]
                subprocess.run([*command, GROUPS[group]], cwd=suite, check=False, stdout=subprocess.DEVNULL)
                passed, failed = counts(out / "output.xml")
                outside = split_counts(out / "output.xml")[False]
                rows.append((group, passed, failed))
                print(
                    f"{group:<18} passed {passed:>4}  failed {failed:>4}  total {passed + failed:>4}"
                    f"   | outside temporal: passed {outside[0]:>4}  failed {outside[1]:>4}"
                    f"  total {outside[0] + outside[1]:>4}",
                    flush=True,
                )
        finally:
            hub.terminate()
            hub.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
