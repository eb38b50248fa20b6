"""Evidence in words: what each detector's finding means, in Japanese and English."""

from __future__ import annotations

from typing import Any

from machimori.detection.detectors import Evidence

#: Stage of the botnet life cycle each evidence code belongs to.
STAGES = {
    "scan": "scanning",
    "cc": "command-and-control",
    "ddos": "ddos",
    "new": "new-behaviour",
    "anomaly": "new-behaviour",
    "exposed": "exposure",
}

_WORDS: dict[str, tuple[str, str]] = {
    "scan.telnet": (
        "telnet ポート {port} への応答のない接続 (Mirai 型のスキャン)",
        "unanswered connection to telnet port {port} (Mirai-style scanning)",
    ),
    "scan.port": (
        "IoT ボットネットが狙うポート {port} への応答のない接続",
        "unanswered connection to port {port}, which IoT botnets scan",
    ),
    "scan.fanout": (
        "直近 1 分に新しい宛先 {n} 件へ接続を試行 (うち {failed:.0%} が失敗)",
        "tried {n} new destinations within about a minute ({failed:.0%} failed)",
    ),
    "scan.vertical": (
        "一つの宛先の {n} 個のポートを試行 (ポートスキャン)",
        "tried {n} ports of one host (port scan)",
    ),
    "scan.darknet": (
        "街の未使用アドレス {darknet} への通信 (ダークネット観測: {source} がスキャン中)",
        "traffic to the town's unused address {darknet} (darknet: {source} is scanning)",
    ),
    "scan.marked": (
        "ダークネット ({darknet}) でスキャンが観測された機器からの接続試行",
        "connection attempt by a device the darknet ({darknet}) saw scanning",
    ),
    "cc.known": (
        "既知の C&C サーバ {peer} との通信 (出典: {source})",
        "traffic with known C&C server {peer} (source: {source})",
    ),
    "cc.irc": (
        "IRC による通信 ({peer}:{port}) — Tsunami/Muhstik 系ボットの C&C 経路",
        "IRC session ({peer}:{port}), the C&C channel of Tsunami/Muhstik bots",
    ),
    "cc.long_lived": (
        "{seconds} 秒続く低流量 ({bytes_per_s:.1f} B/s) のセッション",
        "a session of {seconds} s carrying only {bytes_per_s:.1f} B/s",
    ),
    "cc.beacon": (
        "約 {every_s:.0f} 秒ごとの規則的な接続 ({n} 回、ばらつき {variation:.0%})",
        "regular contact about every {every_s:.0f} s ({n} times, variation {variation:.0%})",
    ),
    "cc.retry": (
        "応答しないサーバ {peer}:{port} への再接続を {tries} 回 (C&C への接続試行)",
        "{tries} tries to reach an unanswering server {peer}:{port} (C&C reconnecting)",
    ),
    "cc.port": (
        "C&C ({c2}) と同じポート {port} で別のサーバへ接続",
        "connection to another server on port {port}, the port of the C&C at {c2}",
    ),
    "ddos.flood": (
        "{peer} への大量の接続 (直近 10 秒に約 {n} 件)",
        "flood of connections to {peer} (about {n} in 10 s)",
    ),
    "ddos.half_open": (
        "一つの宛先への半開きの接続 約 {n} 件 (SYN フラッド)",
        "about {n} half-open connections to one host (SYN flood)",
    ),
    "ddos.one_way": ("応答のない {packets} パケットの一方向送信", "{packets} packets sent one way, none answered"),
    "new.service": (
        "ベースラインにない通信先サービス {proto}/{port}",
        "service {proto}/{port} not in the baseline",
    ),
    "new.peer": ("ベースラインにない外部の宛先 {peer}", "external destination {peer} not in the baseline"),
    "new.listening": (
        "ベースラインにない待ち受けポート {proto}/{port} で接続を受け付けた",
        "accepted a connection on {proto}/{port}, a listening port not in the baseline",
    ),
    "anomaly.volume": (
        "ポート {port} の通信量が通常より {z:.1f}σ 多い",
        "{z:.1f}σ more bytes than usual on port {port}",
    ),
    "anomaly.hour": (
        "ベースラインでは通信の無い時間帯 ({hour} 時 UTC) の通信",
        "activity at {hour}:00 UTC, an hour the baseline never saw it active",
    ),
    "exposed.inbound": (
        "インターネット ({peer}) からの管理ポート {port} への接続を受け付けた",
        "accepted a connection from the internet ({peer}) on management port {port}",
    ),
}


def describe(evidence: Evidence, language: str = "ja") -> str:
    """The evidence as a sentence in Japanese (`ja`) or English (`en`)."""
    japanese, english = _WORDS.get(evidence.code, (evidence.code, evidence.code))
    template = japanese if language == "ja" else english
    try:
        return template.format(**evidence.facts)
    except (KeyError, ValueError, IndexError):
        return evidence.text()


def stage(code: str) -> str:
    """The botnet stage an evidence code belongs to."""
    return STAGES.get(code.split(".", 1)[0], "other")


def facts_of(evidence: Evidence) -> dict[str, Any]:
    """The evidence as JSON-ready data, with its words."""
    return {
        "code": evidence.code,
        "stage": stage(evidence.code),
        "weight": round(evidence.weight, 3),
        "facts": evidence.facts,
        "ja": describe(evidence, "ja"),
        "en": describe(evidence, "en"),
    }
