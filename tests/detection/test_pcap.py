"""Flow assembly from pcap/pcapng captures: link types, Zeek's conn_state and history, timeouts, bad input."""

from __future__ import annotations

import gzip
import re
import socket
import struct
from pathlib import Path

import dpkt  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machimori.detection.assembly import FlowTable
from machimori.detection.flows import Flow
from machimori.detection.pcap import (
    DAMAGED,
    FILE_END,
    FRAGMENT,
    TRUNCATED,
    UNDECODABLE,
    read_capture,
    read_packets,
)
from machimori.detection.protocols import guess_service
from machimori.detection.reading import ReadReport
from machimori.diagnostics import InputError

# A slice of CTU-IoT-Malware-Capture-3-1 (IoT-23): Garcia, Sebastian. Malware Capture Facility Project.
# Stratosphere Lab, CVUT University, Prague; Parmisano, Garcia, Erquiaga, "IoT-23: A labeled dataset with
# malicious and benign IoT network traffic", 2020.
DEV_CAPTURE = Path(__file__).resolve().parents[3] / "shared" / "data" / "iot23-muhstik-3-1.pcap"

CLIENT, SERVER = "192.168.1.20", "203.0.113.7"
FLAGS = {"F": dpkt.tcp.TH_FIN, "S": dpkt.tcp.TH_SYN, "R": dpkt.tcp.TH_RST, "P": dpkt.tcp.TH_PUSH, "A": dpkt.tcp.TH_ACK}
Frame = tuple[float, bytes]


def _addr(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def ip(src: str, dst: str, transport: dpkt.Packet, proto: int) -> bytes:
    """An IPv4 or IPv6 packet (by the address) around a TCP, UDP or ICMP message."""
    if ":" in src:
        body = bytes(transport)
        return bytes(dpkt.ip6.IP6(src=_addr(src), dst=_addr(dst), nxt=proto, hlim=64, plen=len(body), data=body))
    return bytes(dpkt.ip.IP(src=_addr(src), dst=_addr(dst), p=proto, data=transport))


def tcp(src: str, sport: int, dst: str, dport: int, flags: str, seq: int, ack: int = 0, data: bytes = b"") -> bytes:
    flag_bits = sum(FLAGS[letter] for letter in flags)
    segment = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flag_bits, data=data)
    return ip(src, dst, segment, dpkt.ip.IP_PROTO_TCP)


def udp(src: str, sport: int, dst: str, dport: int, data: bytes) -> bytes:
    datagram = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(data), data=data)
    return ip(src, dst, datagram, dpkt.ip.IP_PROTO_UDP)


def ether(packet: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    """An Ethernet frame around an IP packet, with 802.1Q tags if asked."""
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    tags = b"".join(struct.pack("!HH", 0x8100, vlan) for vlan in vlans)
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + tags + struct.pack("!H", ethertype) + packet


def write(path: Path, frames: list[Frame], linktype: int = 1, ng: bool = False) -> Path:
    """A pcap (or pcapng) of these frames, written with dpkt's writers."""
    with path.open("wb") as file:
        writer = dpkt.pcapng.Writer(file, linktype=linktype) if ng else dpkt.pcap.Writer(file, linktype=linktype)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    return path


def exchange(
    spec: str, t0: float = 1_700_000_000.0, c: str = CLIENT, s: str = SERVER, ports: tuple[int, int] = (40000, 8081)
) -> list[Frame]:
    """Ethernet frames of a TCP exchange written as "c:S s:SA c:PA=data …" ("_" for a space in data), seq/ack consistent."""
    isn = {"c": 1000, "s": 5000}
    seqs, frames = dict(isn), []
    for step, item in enumerate(spec.split(" ")):
        who, _, rest = item.partition(":")
        flags, _, text = rest.partition("=")
        data = text.replace("_", " ")
        peer = "s" if who == "c" else "c"
        src, sport, dst, dport = (c, ports[0], s, ports[1]) if who == "c" else (s, ports[1], c, ports[0])
        ack = seqs[peer] if "A" in flags else 0
        seq = isn[who] if "S" in flags else seqs[who]  # a SYN sent again keeps its sequence number
        frames.append((t0 + step * 0.1, ether(tcp(src, sport, dst, dport, flags, seq, ack, data.encode()))))
        seqs[who] = seq + len(data) + ("S" in flags) + ("F" in flags)
    return frames


def flows_of(path: Path, **options: object) -> tuple[list[Flow], ReadReport]:
    report = ReadReport()
    return list(read_capture(path, report, **options)), report  # type: ignore[arg-type]


def test_a_full_exchange_is_sf_with_zeek_history_counts_and_sizes(tmp_path: Path) -> None:
    request, answer = "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nhello"
    spec = f"c:S s:SA c:A c:PA={request.replace(' ', '_')} s:A s:PA={answer.replace(' ', '_')} c:A c:FA s:FA c:A"
    [flow], report = flows_of(write(tmp_path / "sf.pcap", exchange(spec, ports=(40000, 80))))
    assert (flow.orig_h, flow.orig_p, flow.resp_h, flow.resp_p, flow.proto) == (CLIENT, 40000, SERVER, 80, "tcp")
    assert (flow.conn_state, flow.history, flow.service) == ("SF", "ShADadFf", "http")
    assert (flow.orig_pkts, flow.resp_pkts) == (6, 4)
    assert (flow.orig_bytes, flow.resp_bytes) == (len(request), len(answer))
    assert (flow.orig_ip_bytes, flow.resp_ip_bytes) == (6 * 40 + len(request), 4 * 40 + len(answer))
    assert flow.duration == pytest.approx(0.8)  # to the responder's FIN: Zeek leaves out the last ACK
    assert flow.ts == 1_700_000_000.0 and flow.local_orig is None and flow.missed_bytes == 0
    assert re.fullmatch(r"C[0-9A-Za-z]{17}", flow.uid)
    assert report.read == 10 and not report.skipped


@pytest.mark.parametrize(
    ("spec", "state", "history"),
    [
        ("c:S", "S0", "S"),
        ("c:S s:RA", "REJ", "Sr"),
        ("c:S s:SA c:A", "S1", "ShA"),
        ("c:S s:SA c:A c:FA", "S2", "ShAF"),
        ("c:S s:SA c:A s:FA", "S3", "ShAf"),
        ("c:S s:SA c:R", "RSTO", "ShR"),
        ("c:S s:SA c:A s:RA", "RSTR", "ShAr"),
        ("c:S c:R", "RSTOS0", "SR"),
        ("c:S c:F", "SH", "SF"),
        ("s:SA s:R", "RSTRH", "^hr"),
        ("s:SA s:FA", "SHR", "^hf"),
        ("c:PA=x s:PA=y", "OTH", "Dd"),
        ("c:S c:S s:SA c:A c:PA=a s:PA=b c:FA s:FA c:A", "SF", "ShADdFf"),
    ],
)
def test_conn_state_and_history_follow_zeek(tmp_path: Path, spec: str, state: str, history: str) -> None:
    [flow], _ = flows_of(write(tmp_path / "c.pcap", exchange(spec)))
    assert (flow.conn_state, flow.history) == (state, history)
    assert (flow.orig_h, flow.orig_p) == (CLIENT, 40000)  # a first SYN-ACK is turned round: its receiver opened


def test_an_unanswered_syn_has_no_duration_or_sizes_like_zeek(tmp_path: Path) -> None:
    [flow], _ = flows_of(write(tmp_path / "s0.pcap", exchange("c:S")))
    assert (flow.duration, flow.orig_bytes, flow.resp_bytes) == (None, None, None)
    assert (flow.orig_pkts, flow.orig_ip_bytes, flow.resp_pkts, flow.resp_ip_bytes) == (1, 40, 0, 0)


def test_midstream_traffic_from_a_server_port_is_turned_round(tmp_path: Path) -> None:
    [flow], _ = flows_of(write(tmp_path / "m.pcap", exchange("s:PA=banner c:A", ports=(40000, 22))))
    assert (flow.orig_h, flow.orig_p, flow.resp_p, flow.history, flow.conn_state) == (CLIENT, 40000, 22, "^dA", "OTH")


def test_udp_dns_gets_service_and_calls_back_with_the_answers(tmp_path: Path) -> None:
    query = dpkt.dns.DNS(id=7, qd=[dpkt.dns.DNS.Q(name="C2.Example.net", type=dpkt.dns.DNS_A)])
    response = dpkt.dns.DNS(id=7, qd=query.qd, qr=dpkt.dns.DNS_R)
    response.an = [
        dpkt.dns.DNS.RR(name="c2.example.net", type=dpkt.dns.DNS_A, cls=1, ttl=60, rdata=_addr("198.51.100.9")),
        dpkt.dns.DNS.RR(name="c2.example.net", type=dpkt.dns.DNS_AAAA, cls=1, ttl=60, rdata=_addr("2001:db8::9")),
    ]
    frames = [
        (10.0, ether(udp("10.0.0.5", 40001, "10.0.0.1", 53, bytes(query)))),
        (10.02, ether(udp("10.0.0.1", 53, "10.0.0.5", 40001, bytes(response)))),
    ]
    seen: list[tuple[str, list[str]]] = []
    [flow], _ = flows_of(
        write(tmp_path / "dns.pcap", frames), dns_answers=lambda name, addrs: seen.append((name, addrs))
    )
    assert seen == [("c2.example.net", ["198.51.100.9", "2001:db8::9"])]
    assert (flow.proto, flow.service, flow.conn_state, flow.history) == ("udp", "dns", "SF", "Dd")
    assert (flow.orig_bytes, flow.resp_bytes) == (len(bytes(query)), len(bytes(response)))
    assert (flow.orig_pkts, flow.resp_pkts, flow.orig_ip_bytes) == (1, 1, 28 + len(bytes(query)))


def test_a_dns_answer_seen_first_is_turned_round(tmp_path: Path) -> None:
    response = dpkt.dns.DNS(id=7, qd=[dpkt.dns.DNS.Q(name="a.example")], qr=dpkt.dns.DNS_R)
    [flow], _ = flows_of(
        write(tmp_path / "r.pcap", [(1.0, ether(udp("10.0.0.1", 53, "10.0.0.5", 40001, bytes(response))))])
    )
    assert (flow.orig_h, flow.resp_p, flow.conn_state, flow.history) == ("10.0.0.5", 53, "SHR", "^d")


def test_icmp_echo_pairs_request_and_reply_and_errors_are_one_way(tmp_path: Path) -> None:
    echo = dpkt.icmp.ICMP.Echo(id=1, seq=1, data=b"x" * 56)
    frames = [
        (1.0, ether(ip("10.0.0.5", "10.0.0.9", dpkt.icmp.ICMP(type=8, code=0, data=echo), 1))),
        (1.5, ether(ip("10.0.0.9", "10.0.0.5", dpkt.icmp.ICMP(type=0, code=0, data=echo), 1))),
        (2.0, ether(ip("10.0.0.1", "10.0.0.5", dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach()), 1))),
    ]
    ping, unreachable = flows_of(write(tmp_path / "icmp.pcap", frames))[0]
    assert (ping.proto, ping.orig_h, ping.orig_p, ping.resp_p, ping.conn_state) == ("icmp", "10.0.0.5", 8, 0, "OTH")
    assert (ping.orig_pkts, ping.resp_pkts, ping.orig_bytes, ping.resp_bytes, ping.duration) == (1, 1, 56, 56, 0.5)
    assert (unreachable.orig_h, unreachable.orig_p, unreachable.resp_p, unreachable.resp_pkts) == ("10.0.0.1", 3, 3, 0)


def test_ipv6_tcp_and_icmpv6(tmp_path: Path) -> None:
    frames = exchange("c:S s:SA c:A c:PA=SSH-2.0-x s:PA=SSH-2.0-y c:FA s:FA c:A", c="fd00::20", s="2001:db8::7")
    frames.append(
        (1_700_000_009.0, ether(ip("fd00::20", "fd00::1", dpkt.icmp6.ICMP6(type=128, code=0, data=b"\0" * 12), 58)))
    )
    tcp_flow, icmp_flow = flows_of(write(tmp_path / "v6.pcap", frames))[0]
    assert (tcp_flow.orig_h, tcp_flow.resp_h, tcp_flow.service, tcp_flow.conn_state) == (
        "fd00::20",
        "2001:db8::7",
        "ssh",
        "SF",
    )
    assert (tcp_flow.orig_bytes, tcp_flow.orig_ip_bytes) == (9, 5 * 60 + 9)
    assert (icmp_flow.proto, icmp_flow.orig_p, icmp_flow.resp_p) == ("icmp", 128, 129)


def _link_frame(packet: bytes, linktype: int) -> bytes:
    version = packet[0] >> 4
    ethertype = 0x0800 if version == 4 else 0x86DD
    if linktype == 0:
        return struct.pack("<I", 2 if version == 4 else 30) + packet
    if linktype == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\2\0\0\0\0\1", ethertype) + packet
    if linktype == 276:
        return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, b"\2\0\0\0\0\1") + packet
    return packet  # raw IP: 101, 228, 229


@pytest.mark.parametrize("linktype", [0, 101, 113, 228, 276])
def test_other_link_types_give_the_same_flows(tmp_path: Path, linktype: int) -> None:
    frames = exchange("c:S s:SA c:A c:PA=NICK_bot s:PA=PING_:1 c:FA s:FA c:A")
    expected, _ = flows_of(write(tmp_path / "eth.pcap", frames))
    linked = [(ts, _link_frame(frame[14:], linktype)) for ts, frame in frames]
    assert flows_of(write(tmp_path / "other.pcap", linked, linktype=linktype))[0] == expected
    assert expected[0].service == "irc"


def test_vlan_tags_and_pcapng(tmp_path: Path) -> None:
    frames = exchange("c:S s:SA c:A c:FA s:FA c:A")
    expected, _ = flows_of(write(tmp_path / "eth.pcap", frames))
    tagged = [(ts, ether(frame[14:], vlans=(10, 20) if i % 2 else (10,))) for i, (ts, frame) in enumerate(frames)]
    assert flows_of(write(tmp_path / "vlan.pcap", tagged))[0] == expected
    assert flows_of(write(tmp_path / "eth.pcapng", frames, ng=True))[0] == expected


def test_gzip_and_nanosecond_pcap(tmp_path: Path) -> None:
    frames = exchange("c:S s:SA c:A")
    expected, _ = flows_of(write(tmp_path / "a.pcap", frames))
    packed = tmp_path / "a.pcap.gz"
    packed.write_bytes(gzip.compress((tmp_path / "a.pcap").read_bytes()))
    assert flows_of(packed)[0] == expected
    with (tmp_path / "nano.pcap").open("wb") as file:
        writer = dpkt.pcap.Writer(file, nano=True)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    [flow], _ = flows_of(tmp_path / "nano.pcap")
    assert flow.ts == pytest.approx(expected[0].ts) and flow.history == "ShA"


def test_bad_packets_are_counted_and_the_rest_is_read(tmp_path: Path) -> None:
    frames = exchange("c:S s:SA c:A")
    garbage = [
        (1_700_000_001.0, ether(b"\x45\x00\x00")),  # IPv4 header cut short
        (1_700_000_001.1, ether(b"\x75" + b"\0" * 40)),  # IP version 7
        (1_700_000_001.2, ether(tcp(CLIENT, 1, SERVER, 2, "A", 1)[:24])),  # TCP header cut short
    ]
    fragment = bytearray(udp(CLIENT, 5, SERVER, 6, b"later part"))
    fragment[6:8] = struct.pack("!H", 185)  # a fragment at offset 1480
    garbage.append((1_700_000_001.3, ether(bytes(fragment))))
    path = write(
        tmp_path / "bad.pcap", frames + garbage + [(1_700_000_002.0, ether(udp(CLIENT, 9, SERVER, 10, b"x" * 50)))]
    )
    path.write_bytes(path.read_bytes()[:-20])  # the last packet is cut short by the end of the file
    flows, report = flows_of(path)
    assert [(f.proto, f.conn_state) for f in flows] == [("tcp", "S1")]
    assert report.skipped == {TRUNCATED: 2, UNDECODABLE: 1, FRAGMENT: 1, FILE_END: 1}
    assert report.read == 3 and report.examples[-1].line == 8


def test_a_record_with_an_impossible_length_stops_the_reading_and_is_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "d.pcap", exchange("c:S s:SA c:A"))
    path.write_bytes(path.read_bytes() + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 60) + b"\0" * 100)
    flows, report = flows_of(path)
    assert len(flows) == 1 and report.skipped == {DAMAGED: 1} and report.examples[0].line == 4


def test_dns_over_tcp_answers_reach_the_callback(tmp_path: Path) -> None:
    answer = dpkt.dns.DNS(id=1, qd=[dpkt.dns.DNS.Q(name="big.example")], qr=dpkt.dns.DNS_R)
    answer.an = [dpkt.dns.DNS.RR(name="big.example", type=dpkt.dns.DNS_A, cls=1, ttl=5, rdata=_addr("192.0.2.1"))]
    message = struct.pack("!H", len(bytes(answer))) + bytes(answer)
    frames = [(1.0, ether(tcp(SERVER, 53, CLIENT, 40000, "PA", 5001, 1001, message)))]
    seen: list[tuple[str, list[str]]] = []
    [flow], _ = flows_of(write(tmp_path / "t.pcap", frames), dns_answers=lambda *answer: seen.append(answer))
    assert seen == [("big.example", ["192.0.2.1"])] and (flow.service, flow.orig_h) == ("dns", CLIENT)


_VALID = exchange("c:S s:SA c:PA=x")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    linktype=st.sampled_from([0, 1, 101, 113, 276]),
    cuts=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 80), st.binary(max_size=4)), max_size=6),
    noise=st.lists(st.binary(max_size=90), max_size=4),
)
def test_damaged_frames_never_raise_only_count(
    tmp_path: Path, linktype: int, cuts: list[tuple[int, int, bytes]], noise: list[bytes]
) -> None:
    frames = [(ts, bytearray(frame if linktype == 1 else _link_frame(frame[14:], linktype))) for ts, frame in _VALID]
    for index, at, junk in cuts:
        frames[index][1][at : at + len(junk)] = junk
    all_frames = [(ts, bytes(frame)) for ts, frame in frames] + [(1_700_000_001.0, junk) for junk in noise]
    flows, report = flows_of(write(tmp_path / "fuzz.pcap", all_frames, linktype=linktype))
    assert report.read + report.skipped_total == len(all_frames)
    assert all(f.orig_pkts + f.resp_pkts > 0 for f in flows)


def test_a_truncated_pcapng_is_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "t.pcapng", exchange("c:S s:SA c:A"), ng=True)
    path.write_bytes(path.read_bytes()[:-10])
    flows, report = flows_of(path)
    assert len(flows) == 1 and report.skipped == {FILE_END: 1} and report.read == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a pcap or pcapng capture"),
        (b"#fields\tts\tuid\n", "not a pcap or pcapng capture"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "damaged capture header"),
        (b"\x1f\x8b\x08\x00garbage", "damaged gzip stream"),
    ],
)
def test_a_file_that_is_not_a_capture_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        flows_of(path)
    with pytest.raises(InputError, match="file not found"):
        flows_of(tmp_path / "missing.pcap")


def test_an_unknown_link_type_is_one_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "usb.pcap", [(1.0, b"\0" * 64)], linktype=189)
    with pytest.raises(InputError) as caught:
        flows_of(path)
    assert "unsupported link type 189" in str(caught.value) and "対応していないリンク種別" in str(caught.value)


def test_the_connection_table_is_capped_and_every_flow_still_comes_out(tmp_path: Path) -> None:
    frames = [(1000.0 + i * 0.001, ether(udp(CLIENT, 10000 + i, SERVER, 9999, b"probe"))) for i in range(2000)]
    path = write(tmp_path / "flood.pcap", frames)
    table, flows = FlowTable(max_connections=50), list[Flow]()
    for packet in read_packets(path, ReadReport()):
        flows.extend(table.add(packet))
    flows.extend(table.flush())
    assert table.peak == 50 and len(flows) == 2000
    assert sorted(f.orig_p for f in flows) == list(range(10000, 12000))
    assert len(flows_of(path, max_connections=50)[0]) == 2000


def test_timeouts_split_idle_flows_and_flows_come_out_as_they_end(tmp_path: Path) -> None:
    def datagram(ts: float, sport: int) -> Frame:
        return ts, ether(udp(CLIENT, sport, SERVER, 7000, b"hi"))

    frames = [datagram(0.0, 1), datagram(10.0, 1), datagram(75.0, 1), datagram(80.0, 2), datagram(134.0, 2)]
    frames += exchange("c:S s:SA c:A", t0=90.0)  # TCP waits 5 minutes
    frames += [datagram(200.0, 3)]
    flows, _ = flows_of(write(tmp_path / "idle.pcap", frames))
    assert [(f.proto, f.orig_p, f.ts) for f in flows] == [
        ("udp", 1, 0.0),  # idle 65 s > 60 s: ended, emitted when time passed 70 s
        ("udp", 1, 75.0),
        ("udp", 2, 80.0),  # idle 54 s: one flow
        ("tcp", 40000, 90.0),  # still open at the end: flushed by start time
        ("udp", 3, 200.0),
    ]
    assert [f.orig_pkts for f in flows] == [2, 1, 2, 2, 1]


def test_tcp_attempts_and_port_reuse_start_new_flows(tmp_path: Path) -> None:
    retries = [(t, ether(tcp(CLIENT, 40000, SERVER, 23, "S", 77))) for t in (0.0, 1.0, 3.0, 7.0)]
    first_use = exchange("c:S s:SA c:A c:FA s:FA c:A", t0=20.0)
    second_use = [(22.0, ether(tcp(CLIENT, 40000, SERVER, 8081, "S", 99999)))]
    flows, _ = flows_of(write(tmp_path / "r.pcap", retries + first_use + second_use))
    assert [(f.resp_p, f.conn_state, f.orig_pkts) for f in flows] == [
        (23, "S0", 3),
        (23, "S0", 1),
        (8081, "SF", 4),
        (8081, "S0", 1),
    ]


def test_uids_are_deterministic_and_distinct(tmp_path: Path) -> None:
    frames = exchange("c:S s:SA c:A") + exchange("c:S s:RA", t0=1_700_000_100.0, ports=(40001, 8081))
    path = write(tmp_path / "u.pcap", frames)
    first, second = flows_of(path)[0], flows_of(path)[0]
    assert [f.uid for f in first] == [f.uid for f in second] and len({f.uid for f in first}) == 2


@pytest.mark.parametrize(
    ("proto", "ports", "payload", "service"),
    [
        (6, (40000, 6667), b":irc.example 001 bot :Welcome\r\n", "irc"),
        (6, (40000, 2407), b"PASS x\r\nNICK bot\r\n", "irc"),
        (6, (40000, 443), b"\x16\x03\x01\x02\x00\x01", "ssl"),
        (6, (40000, 23), b"\xff\xfd\x18\xff\xfd\x20", "telnet"),
        (6, (40000, 21), b"USER anonymous\r\n", ""),
        (17, (40000, 123), bytes([0x23]) + b"\0" * 47, "ntp"),
        (17, (40000, 53), b"not dns", ""),
        (1, (8, 0), b"GET /", ""),
    ],
)
def test_service_guesses(proto: int, ports: tuple[int, int], payload: bytes, service: str) -> None:
    assert guess_service(proto, *ports, payload) == service


# Zeek's own conn.log of this capture, as the Zeek documentation shows it (docs.zeek.org, "irc.log" page,
# "Botnet IRC Traffic"): responder and service of each TCP flow, in the order Zeek logged them (as they ended).
# Its capture also holds one ICMP message that this slice does not.
ZEEK_ORDER = [
    ("111.230.241.23", "irc"),
    ("51.38.81.99", "irc"),
    ("185.61.149.22", ""),
    ("54.39.23.28", "irc"),
    ("54.39.23.28", "irc"),
    ("185.47.129.56", ""),
    ("111.230.241.23", "irc"),
    ("54.39.23.28", "irc"),
]


@pytest.mark.skipif(not DEV_CAPTURE.exists(), reason=f"development capture not present at {DEV_CAPTURE}")
def test_the_muhstik_capture_gives_the_flows_zeek_gives() -> None:
    """IoT-23 CTU-IoT-Malware-Capture-3-1 (Garcia, Stratosphere Lab, CVUT; Parmisano, Garcia, Erquiaga 2020)."""
    flows, report = flows_of(DEV_CAPTURE)
    assert report.read == 12202 and not report.skipped
    assert [(f.resp_h, f.service) for f in flows] == ZEEK_ORDER
    assert all(f.orig_h == "192.168.2.5" and f.resp_p == 2407 and f.proto == "tcp" for f in flows)
    irc = [f for f in flows if f.service == "irc"]
    assert sum(f.duration or 0 for f in irc) > 30 * 3600 and max(f.duration or 0 for f in irc) > 24 * 3600
    failed = {f.resp_h: (f.conn_state, f.history, f.orig_pkts) for f in flows if not f.service}
    assert failed == {"185.47.129.56": ("S0", "S", 3), "185.61.149.22": ("RSTO", "ShR", 2)}
    assert len({f.uid for f in flows}) == len(flows)
