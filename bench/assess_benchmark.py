"""Benchmark: assess generated city models of growing size; prints wall time and peak memory per size.

Usage: python bench/assess_benchmark.py [--sizes 1000:10000,10000:100000] [--repeat 3]

Each size runs, in fresh processes, exactly what a user runs:
  machimori assess MODEL --as-of 2026-12-01                      (summary on the terminal)
  machimori assess MODEL --as-of 2026-12-01 -f json -o FILE      (the full JSON result as well)
The best of --repeat runs is printed, with the peak resident memory of that process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

_MEASURE = """
import resource, runpy, sys, time
sys.argv = ["machimori", *sys.argv[1:]]
start = time.perf_counter()
try:
    runpy.run_module("machimori.cli", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(f"{time.perf_counter() - start} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}", file=sys.stderr)
"""


def model(components: int, flows: int) -> Path:
    """The generated model of that size (generated once, then reused)."""
    path = OUT / f"city-{components}-{flows}.yaml"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate_model.py"),
                "--components",
                str(components),
                "--flows",
                str(flows),
                "-o",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
    return path


def measure(args: list[str], repeat: int) -> tuple[float, float]:
    """Best wall time (s) of the command in-process after interpreter start, and its peak RSS (MB)."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, check=True)
        wall, rss = (float(x) for x in result.stderr.strip().splitlines()[-1].split())
        best = min(best, (wall, rss))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000:10000,2500:25000,5000:50000,10000:100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# machimori assess — {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(
        "| components | flows | YAML MB | assess s | peak MB | assess + JSON s | peak MB | JSON MB | targets | "
        "findings | risk instances | gaps |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        components, flows = (int(x) for x in size.split(":"))
        path = model(components, flows)
        output = path.with_suffix(".json")
        summary = measure(["assess", str(path), "--as-of", "2026-12-01"], args.repeat)
        full = measure(["assess", str(path), "--as-of", "2026-12-01", "-f", "json", "-o", str(output)], args.repeat)
        result = json.loads(output.read_text(encoding="utf-8"))
        s = result["summary"]
        print(
            f"| {components:,} | {flows:,} | {path.stat().st_size / 1e6:.1f} | {summary[0]:.2f} | {summary[1]:.0f} | "
            f"{full[0]:.2f} | {full[1]:.0f} | {output.stat().st_size / 1e6:.0f} | {s['targets_total']:,} | "
            f"{s['findings_total']:,} | {s['risks_total']:,} | {s['gaps_total']:,} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
