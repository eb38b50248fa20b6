"""`machimori detect watch` on a conn.log that Zeek is still writing: a scan appended to the file becomes a
finding on the screen and an event in the database, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from machimori.config import load_settings
from machimori.detection.synthetic import DARKNET, INFECTED
from machimori.detection.zeek import conn_log_header
from machimori.events.query import EventQuery, find_events
from machimori.platform import open_platform

from ..conftest import ADMIN_TOKEN


def probe_line(n: int) -> str:
    return f"{1_700_000_000 + n * 0.1:.6f}\tCw{n}\t{INFECTED}\t40000\t10.20.99.{1 + n % 250}\t23\ttcp\t-\t-\t-\t-\tS0\t-\t-\t0\tS\t1\t60\t0\t0\n"


def wait_for(predicate: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_watch_follows_the_growing_log_and_reports_the_scan_as_an_event(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_text(conn_log_header(1.7e9), encoding="utf-8")
    data = tmp_path / "data"
    environment = {
        **os.environ,
        "MACHIMORI_DATA_DIR": str(data),
        "MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN,
        "MACHIMORI_DETECTION_DARKNET": DARKNET,
    }
    output = tmp_path / "watch.out"
    with output.open("w", encoding="utf-8") as sink:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "machimori.cli", "detect", "watch", str(log), "--from-start", "--poll", "0.05"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        try:
            assert wait_for(lambda: "watching" in output.read_text(encoding="utf-8")), output.read_text()
            with log.open("a", encoding="utf-8") as writer:
                for n in range(20):
                    writer.write(probe_line(n))
                    writer.flush()
            assert wait_for(lambda: "scanning" in output.read_text(encoding="utf-8")), output.read_text()
        finally:
            watcher.send_signal(signal.SIGTERM)
            code = watcher.wait(timeout=30)
    assert code == 0, output.read_text()
    text = output.read_text(encoding="utf-8")
    assert "スキャン" in text and "Traceback" not in text
    platform = open_platform(load_settings(environ={}, data_dir=data, admin_token=ADMIN_TOKEN))
    try:
        events = find_events(platform.database, EventQuery(class_uid=2004, limit=50))
    finally:
        platform.close()
    assert any(event["unmapped"].get("finding") == "network-scanning" for event in events)
