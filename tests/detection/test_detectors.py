"""Each botnet-stage detector on flows built for it: it fires with its reason, and stays quiet on the benign
look-alike next to it (a heartbeat to the platform, a camera's uploads, DNS to the resolver)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from machimori.detection.baseline import MATURE_FLOWS
from machimori.detection.flows import Flow
from machimori.detection.scoring import Darknet, Scorer, Verdict
from machimori.detection.state import BEACON_SLOTS, FLOOD_SLOTS, PAIR_SLOTS, PEER_SLOTS

DEVICE = "10.20.0.44"
T0 = 1_700_000_000.0
_uids = itertools.count()


def flow(ts: float, resp_h: str, resp_p: int, **fields: Any) -> Flow:
    """An outbound flow of the device (fields override the defaults of an answered TCP exchange)."""
    values: dict[str, Any] = {
        "ts": T0 + ts,
        "uid": f"C{next(_uids)}",
        "orig_h": DEVICE,
        "orig_p": 40000,
        "resp_h": resp_h,
        "resp_p": resp_p,
        "proto": "tcp",
        "duration": 0.2,
        "orig_bytes": 300,
        "resp_bytes": 200,
        "conn_state": "SF",
        "history": "ShADadFf",
        "orig_pkts": 5,
        "orig_ip_bytes": 500,
        "resp_pkts": 4,
        "resp_ip_bytes": 360,
    }
    values.update(fields)
    return Flow(**values)


def probe(ts: float, resp_h: str, resp_p: int = 23) -> Flow:
    """An unanswered SYN, as a scanner leaves them."""
    return flow(ts, resp_h, resp_p, duration=None, orig_bytes=None, resp_bytes=None, conn_state="S0", history="S",
                orig_pkts=1, orig_ip_bytes=60, resp_pkts=0, resp_ip_bytes=0)  # fmt: skip


def codes(verdict: Verdict) -> set[str]:
    return {evidence.code for evidence in verdict.evidence}


def public(n: int) -> str:
    return f"{11 + n // 65536 % 200}.{n // 256 % 256}.{n % 256}.7"


def test_a_telnet_scan_is_flagged_and_grows_more_certain_with_fan_out() -> None:
    scorer = Scorer()
    verdicts = [scorer.score(probe(n * 0.1, public(n), 2323 if n % 10 == 0 else 23)) for n in range(60)]

    assert "scan.telnet" in codes(verdicts[0])
    assert "scan.fanout" not in codes(verdicts[0])
    assert "scan.fanout" in codes(verdicts[-1])
    assert verdicts[-1].score > 0.85 > verdicts[0].score
    assert "scan.fanout(n=" in verdicts[-1].reasons


def test_an_ssh_or_web_scan_is_flagged_as_a_botnet_port_scan() -> None:
    scorer = Scorer()
    verdicts = [scorer.score(probe(n * 0.2, public(n), 8080 if n % 2 else 22)) for n in range(40)]

    assert "scan.port" in codes(verdicts[0])
    assert verdicts[-1].score > 0.8


def test_many_ports_of_one_host_is_a_vertical_scan() -> None:
    scorer = Scorer()
    target = public(1)
    verdicts = [scorer.score(probe(n * 0.1, target, 1000 + n)) for n in range(40)]

    assert "scan.vertical" in codes(verdicts[-1])


def test_the_darknet_marks_its_visitor_as_a_scanner() -> None:
    scorer = Scorer(darknet=Darknet(["10.20.99.0/24"]))

    hit = scorer.score(probe(0, "10.20.99.5"))
    later = scorer.score(probe(30, public(5), 8080))

    assert "scan.darknet" in codes(hit) and hit.score >= 0.95
    assert "scan.marked" in codes(later)
    assert "10.20.99.5" in hit.reasons


def test_an_outside_scanner_hitting_the_darknet_is_reported_by_its_source() -> None:
    scorer = Scorer(darknet=Darknet(["10.20.99.0/24"]))

    verdict = scorer.score(flow(0, "10.20.99.9", 23, orig_h="45.1.2.3", conn_state="S0", resp_pkts=0))

    assert verdict.device == "10.20.99.9"
    assert "source=45.1.2.3" in verdict.reasons


def test_irc_to_the_internet_is_command_and_control() -> None:
    scorer = Scorer()

    by_service = scorer.score(flow(0, public(1), 2407, service="irc"))
    by_port = scorer.score(flow(1, public(2), 6667))

    assert "cc.irc" in codes(by_service) and by_service.score >= 0.85
    assert "cc.irc" in codes(by_port)


def test_a_long_quiet_session_on_an_odd_port_is_command_and_control_but_not_on_mqtt_over_tls() -> None:
    scorer = Scorer()

    odd = scorer.score(flow(0, public(1), 2407, duration=93_280.0, orig_bytes=6485, resp_bytes=9084))
    mqtt = scorer.score(flow(0, public(2), 8883, duration=93_280.0, orig_bytes=6485, resp_bytes=9084))

    assert "cc.long_lived" in codes(odd)
    assert "cc.long_lived" not in codes(mqtt)


def test_a_regular_beacon_to_an_odd_port_is_flagged_and_a_heartbeat_to_the_platform_is_not() -> None:
    scorer = Scorer()
    beacon = [scorer.score(flow(n * 120.0 + (n % 3) * 0.5, public(1), 5555)) for n in range(8)]
    heartbeat = [scorer.score(flow(n * 60.0, "10.20.0.2", 8883)) for n in range(30)]

    assert "cc.beacon" in codes(beacon[-1])
    assert "every_s=120" in beacon[-1].reasons
    assert all(verdict.score < 0.1 for verdict in heartbeat)


def test_a_server_on_the_port_of_a_known_c2_is_suspect() -> None:
    scorer = Scorer()
    scorer.score(flow(0, public(1), 2407, service="irc"))

    fallback = scorer.score(probe(10, public(2), 2407))

    assert "cc.port" in codes(fallback)


def test_a_flood_to_one_host_is_ddos_participation() -> None:
    scorer = Scorer()
    target = public(9)
    verdicts = [scorer.score(probe(n * 0.02, target, 80)) for n in range(200)]

    assert {"ddos.flood", "ddos.half_open"} <= codes(verdicts[-1])
    assert verdicts[-1].score > 0.9


def test_a_one_way_udp_flood_is_flagged() -> None:
    verdict = Scorer().score(flow(0, public(3), 53, proto="udp", conn_state="S0", orig_pkts=5000, resp_pkts=0))

    assert "ddos.one_way" in codes(verdict)


def test_dns_bursts_to_the_local_resolver_are_not_a_flood() -> None:
    scorer = Scorer()
    verdicts = [scorer.score(flow(n * 0.05, "10.20.0.1", 53, proto="udp", service="dns")) for n in range(200)]

    assert all("ddos.flood" not in codes(verdict) for verdict in verdicts)


def test_a_known_c2_address_from_the_indicators_is_critical() -> None:
    from machimori.detection.indicators import IndicatorSet

    indicators = IndicatorSet()
    indicators.add("198.51.100.77", source="isac-feed")
    scorer = Scorer(indicators=indicators)

    verdict = scorer.score(flow(0, "198.51.100.77", 443))

    assert "cc.known" in codes(verdict) and verdict.score >= 0.99
    assert "isac-feed" in verdict.reasons


def mature(scorer: Scorer) -> float:
    """Teach the scorer a device that talks MQTT to the platform every minute; the time after."""
    for n in range(MATURE_FLOWS + 20):
        scorer.score(flow(n * 60.0, "10.20.0.2", 8883))
    return (MATURE_FLOWS + 20) * 60.0


def test_a_new_service_and_a_new_listening_port_depart_from_the_baseline() -> None:
    scorer = Scorer()
    now = mature(scorer)

    usual = scorer.score(flow(now, "10.20.0.2", 8883))
    new_service = scorer.score(flow(now + 1, public(4), 4444))
    listening = scorer.score(flow(now + 2, DEVICE, 31337, orig_h=public(8)))

    assert usual.score < 0.05
    assert {"new.service", "new.peer"} <= codes(new_service)
    assert "new.listening" in codes(listening)


def test_a_flow_far_larger_than_usual_is_a_volume_anomaly() -> None:
    scorer = Scorer()
    now = mature(scorer)

    verdict = scorer.score(flow(now, "10.20.0.2", 8883, orig_ip_bytes=50_000_000))

    assert "anomaly.volume" in codes(verdict)


def test_what_is_flagged_is_not_learned_as_normal() -> None:
    scorer = Scorer()
    mature(scorer)
    for n in range(300):
        scorer.score(probe(10_000 + n * 0.1, public(n)))

    profile = scorer.baselines.devices[DEVICE]

    assert ("tcp", 23) not in profile.services


def test_an_inbound_telnet_login_from_the_internet_is_exposure_and_a_refused_one_is_not() -> None:
    scorer = Scorer()

    accepted = scorer.score(flow(0, DEVICE, 23, orig_h="45.1.2.3"))
    refused = scorer.score(flow(1, DEVICE, 23, orig_h="45.1.2.4", conn_state="REJ"))

    assert "exposed.inbound" in codes(accepted)
    assert refused.evidence == []


def test_a_baseline_from_other_devices_speaks_for_a_new_device() -> None:
    scorer = Scorer(learn=False)
    scorer.train(flow(n * 60.0, "10.20.0.2", 8883, orig_h="10.20.0.10") for n in range(MATURE_FLOWS + 20))

    usual = scorer.score(flow(0, "10.20.0.2", 8883))
    odd = scorer.score(flow(1, public(4), 4444))

    assert usual.evidence == []
    assert "new.service" in codes(odd)


@pytest.mark.parametrize("count", [20_000])
def test_state_per_device_is_bounded_whatever_the_traffic(count: int) -> None:
    scorer = Scorer()
    for n in range(count):
        scorer.score(probe(n * 0.001, public(n), 1 + n % 60000))
        scorer.score(flow(n * 0.001, DEVICE, 1 + n % 60000, orig_h=public(n + 7)))

    state = scorer.states.states[DEVICE]
    profile = scorer.baselines.devices[DEVICE]

    assert state.peers is not None and state.pairs is not None
    assert len(state.peers) == PEER_SLOTS and len(state.pairs) == PAIR_SLOTS
    assert len(state.beacons) <= BEACON_SLOTS and len(state.floods) <= FLOOD_SLOTS
    assert len(profile.peers) <= 1024 and len(profile.services) <= 256 and len(profile.listening) <= 128


def test_the_number_of_devices_tracked_is_bounded() -> None:
    scorer = Scorer(max_devices=100)
    for n in range(1000):
        scorer.score(flow(n, public(n), 443, orig_h=f"10.1.{n // 256}.{n % 256}"))

    assert len(scorer.states) <= 100 and len(scorer.baselines.devices) <= 100


def test_scores_are_the_same_in_every_run() -> None:
    def run() -> list[float]:
        scorer = Scorer(darknet=Darknet(["10.20.99.0/24"]))
        flows = [probe(n * 0.3, public(n * 7919)) for n in range(300)]
        return [scorer.score(item).score for item in flows]

    assert run() == run()


def test_out_of_order_flows_do_not_break_the_rates() -> None:
    scorer = Scorer()
    for n in range(50):
        scorer.score(probe(100 - n, public(n)))

    state = scorer.states.states[DEVICE]

    assert 0 < state.new_peers <= 50 and state.failures <= state.attempts


def test_retrying_an_unanswering_server_again_and_again_is_a_c2_reconnect() -> None:
    scorer = Scorer()
    server = public(3)
    verdicts = [scorer.score(probe(n * 7.0 + (n % 4) * 0.5, server, 48101)) for n in range(8)]

    assert "cc.retry" not in codes(verdicts[2])
    assert "cc.retry" in codes(verdicts[-1])
    assert f"peer={server}" in verdicts[-1].reasons


def test_unanswered_dns_to_many_resolvers_is_not_a_scan() -> None:
    scorer = Scorer()
    verdicts = [
        scorer.score(flow(n * 0.5, public(n), 53, proto="udp", conn_state="S0", resp_pkts=0, service="dns"))
        for n in range(60)
    ]

    assert all("scan.fanout" not in codes(verdict) for verdict in verdicts)


def test_a_training_window_learns_the_first_hour_and_then_holds_still() -> None:
    scorer = Scorer(training_window=3600.0)
    for n in range(200):
        scorer.score(flow(n * 15.0, "10.20.0.2", 8883))  # 50 minutes of heartbeats: learned
    learned = scorer.baselines.devices[DEVICE].flows
    for n in range(100):
        scorer.score(flow(7200.0 + n * 15.0, public(n % 3), 9999))  # after the window: judged, not learned

    profile = scorer.baselines.devices[DEVICE]

    assert learned == 200 and profile.flows == 200
    assert ("tcp", 9999) not in profile.services


def test_activity_in_an_hour_the_baseline_never_saw_is_unusual() -> None:
    scorer = Scorer()
    day = 86400.0
    for n in range(600):  # eight hours a day (9 to 17 hours after T0), over ten days
        scorer.score(flow((n // 60) * day + 9 * 3600.0 + (n % 60) * 480.0, "10.20.0.2", 8883))

    night = scorer.score(flow(20 * day + 3 * 3600.0, "10.20.0.2", 8883))
    noon = scorer.score(flow(20 * day + 12 * 3600.0, "10.20.0.2", 8883))

    assert "anomaly.hour" in codes(night)
    assert "anomaly.hour" not in codes(noon)
