"""Benchmark: assess generated city models of growing size; prints time and peak memory per size.

Usage: python bench/assess_benchmark.py [--sizes 1000:10000,10000:100000] [--repeat 1]

Each size runs `machimori assess MODEL --format json -o FILE` in a fresh process (what a user runs), and
the same steps in-process for a breakdown: load (parse + validate + references), assess, JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

_BREAKDOWN = """
import json, sys, time, datetime as dt, resource
from machimori.governance.catalog import load_catalog
from machimori.governance.model import load_model
from machimori.governance.assessment import assess
from machimori.governance.reports.json_report import to_json
catalog = load_catalog()
t0 = time.perf_counter(); model = load_model(sys.argv[1], catalog)
t1 = time.perf_counter(); result = assess(model, catalog, as_of=dt.date(2026, 12, 1))
t2 = time.perf_counter(); text = json.dumps(to_json(result, catalog), ensure_ascii=False)
t3 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "assess": t2 - t1, "json": t3 - t2, "targets": len(result.targets),
                  "findings": len(result.findings), "risks": len(result.risks), "gaps": len(result.gaps),
                  "json_mb": len(text.encode()) / 1e6,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _model(components: int, flows: int) -> Path:
    path = OUT / f"city-{components}-{flows}.yaml"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "generate_model.py"), "--components", str(components), "--flows", str(flows),
             "-o", str(path)],
            check=True,
        )
    return path


def _cli(path: Path) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of one `machimori assess` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "machimori.cli", "assess", str(path), "--format", "json", "-o",
         str(path.with_suffix(".json")), "--as-of", "2026-12-01"],
        check=True, capture_output=True,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(after, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000:10000,2500:25000,5000:50000,10000:100000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"# machimori assess benchmark — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print("| components | flows | file MB | end-to-end s | load s | assess s | json s | peak RSS MB | targets | "
          "findings | risk instances | gaps |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        components, flows = (int(x) for x in size.split(":"))
        path = _model(components, flows)
        wall = min(_cli(path)[0] for _ in range(args.repeat))
        result = subprocess.run([sys.executable, "-c", _BREAKDOWN, str(path)], check=True, capture_output=True,
                                text=True)
        b = json.loads(result.stdout)
        print(f"| {components:,} | {flows:,} | {path.stat().st_size / 1e6:.1f} | {wall:.2f} | {b['load']:.2f} | "
              f"{b['assess']:.2f} | {b['json']:.2f} | {b['maxrss_mb']:.0f} | {b['targets']:,} | {b['findings']:,} | "
              f"{b['risks']:,} | {b['gaps']:,} |", flush=True)


if __name__ == "__main__":
    main()
