"""BENCHMARK ONLY: `machimori serve` with the platform's decision point replaced by one that permits everything.

bench/hub_benchmark.py starts this beside a real `machimori serve` to measure what enforcement costs: the
same app, database, OAuth tokens, audit log and event stream, only `platform.decisions` answers permit to
every question without looking at anything. Nothing in src/ knows of it; it listens on loopback only.
Settings come from MACHIMORI_* environment variables, as for `machimori serve`. Run:
.venv/bin/python bench/hub_permit_all_server.py --port 8751
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from machimori.config import load_settings
from machimori.platform import open_platform
from machimori.policy import Action, Context, Decision, DecisionPoint, Subject, Target
from machimori.web.app import create_app
from machimori.web.logs import configure_logging

PERMIT = Decision(
    True, "bench-permit-everything", "ベンチマーク専用: すべて許可", "benchmark only: everything permitted"
)


class PermitEverything(DecisionPoint):
    """A decision point that permits every request, for measuring the cost of the real one."""

    def decide(self, subject: Subject, action: Action, target: Target, context: Context) -> Decision:
        return PERMIT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings(port=args.port)
    if not settings.loopback:
        sys.exit(f"refused: {settings.host} is not a loopback address (this server permits everything)")
    log_config = configure_logging(settings.log_level, settings.log_format)
    platform = open_platform(settings)
    platform.decisions = PermitEverything(platform.consent.current, platform.consent.version)
    print(
        f"hub_permit_all_server: decision point bypassed, listening on {settings.host}:{settings.port}", file=sys.stderr
    )
    uvicorn.run(
        create_app(platform),
        host=settings.host,
        port=settings.port,
        log_config=log_config,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


if __name__ == "__main__":
    main()
