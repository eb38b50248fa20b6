"""The default-credential probe against fake devices on 127.0.0.1: telnet, SSH, HTTP Basic and Digest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import pytest

from machimori.gateway.credentials import CredentialPair, mirai_pairs
from machimori.gateway.probe import ProbeFinding, ProbeProtocol, ProbeTarget, probe

HOST = "127.0.0.1"
FAST = 500.0  # attempts per second where the pacing is not under test
STRONG = ("cam-gw-07", "vT3!qP9#mW2x@Lr8")
# the pair each fake device really has, when it has a default one (password ≠ username, so a leak is visible)
DEFAULT_OF: dict[ProbeProtocol, tuple[str, str]] = {
    "telnet": ("root", "xc3511"),
    "ssh": ("root", "vizxv"),
    "http-basic": ("admin", "smcadmin"),
    "http-digest": ("root", "xmhdipc"),
}
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SUPPRESS_GO_AHEAD, TERMINAL_TYPE, NAWS = 1, 3, 24, 31


@dataclass
class Fake:
    """A fake device's record: connections, login attempts (monotonic time, username) and how it closes."""

    username: str
    password: str
    open_without_password: bool = False
    connections: int = 0
    attempts: list[tuple[float, str]] = field(default_factory=list)
    telnet_replies: list[tuple[int, int]] = field(default_factory=list)
    port: int = 0
    close: Callable[[], Awaitable[None]] | None = None

    def check(self, username: str, password: str) -> bool:
        self.attempts.append((time.monotonic(), username))
        return (username, password) == (self.username, self.password)


def _subset_with(pair: tuple[str, str]) -> list[CredentialPair]:
    """Five Mirai pairs that are not the device's, then the device's (a Mirai pair too), then two more."""
    others = [p for p in mirai_pairs() if (p.username, p.password) != pair]
    mine = next(p for p in mirai_pairs() if (p.username, p.password) == pair)
    return [*others[:5], mine, *others[5:7]]


def _target(protocol: ProbeProtocol, port: int) -> ProbeTarget:
    return ProbeTarget(f"dev-{protocol}", HOST, port, protocol, "/cgi-bin/admin.cgi" if "http" in protocol else "/")


# fake telnet device -----------------------------------------------------------------------------------


async def _telnet_line(reader: asyncio.StreamReader, fake: Fake) -> str | None:
    """One line from the client, its option replies taken out and recorded."""
    data = bytearray()
    while True:
        byte = await reader.read(1)
        if not byte:
            return None
        if byte[0] == IAC:
            command, option = await reader.readexactly(2)
            fake.telnet_replies.append((command, option))
        elif byte == b"\n":
            return data.decode().rstrip("\r")
        elif byte != b"\0":
            data += byte


async def start_telnet(fake: Fake) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fake.connections += 1
        try:
            writer.write(bytes((IAC, WILL, ECHO, IAC, WILL, SUPPRESS_GO_AHEAD, IAC, DO, TERMINAL_TYPE)))
            writer.write(bytes((IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE)) + b"\r\nBusyBox on fake-cam\r\n")
            writer.write(bytes((IAC, DO, NAWS)) + b"fake-cam login: ")
            username = await _telnet_line(reader, fake)
            writer.write(b"Password: ")
            password = await _telnet_line(reader, fake)
            if username is None or password is None:
                return
            if fake.check(username, password):
                writer.write(b"\r\n\r\nBusyBox v1.19.4 built-in shell (ash)\r\n# ")
            else:
                writer.write(b"\r\nLogin incorrect\r\nfake-cam login: ")
            await writer.drain()
            await reader.read()  # the prober hangs up
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    fake.port = server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        await server.wait_closed()

    fake.close = close


# fake SSH device --------------------------------------------------------------------------------------


class _SshDevice(asyncssh.SSHServer):
    def __init__(self, fake: Fake, keyboard_interactive: bool) -> None:
        self._fake = fake
        self._kbdint = keyboard_interactive

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._fake.connections += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return not self._kbdint

    def validate_password(self, username: str, password: str) -> bool:
        return self._fake.check(username, password)

    def kbdint_auth_supported(self) -> bool:
        return self._kbdint

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> Any:
        self._user = username
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username: str, responses: Any) -> bool:
        return self._fake.check(username, responses[0]) if len(responses) == 1 else False


async def start_ssh(fake: Fake, keyboard_interactive: bool = False) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        lambda: _SshDevice(fake, keyboard_interactive), HOST, 0, server_host_keys=[key]
    )
    fake.port = server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        await server.wait_closed()

    fake.close = close


# fake HTTP device (Basic or RFC 7616 Digest with MD5 and qop=auth) ------------------------------------

REALM = "fake-cam"
_DIGEST_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_valid(fake: Fake, method: str, uri: str, header: str, nonces: set[str]) -> bool:
    """RFC 7616 §3.4.1 with MD5 and qop=auth: recompute the response from the password the device knows."""
    params = {m[0].lower(): m[1] or m[2] for m in _DIGEST_PARAM.findall(header)}
    username = params.get("username", "")
    if params.get("realm") != REALM or params.get("nonce") not in nonces or params.get("uri") != uri:
        fake.attempts.append((time.monotonic(), username))
        return False
    if params.get("qop") != "auth" or params.get("algorithm", "MD5").upper() != "MD5":
        fake.attempts.append((time.monotonic(), username))
        return False
    password = fake.password if username == fake.username else secrets.token_hex(16)
    ha1 = _md5(f"{username}:{REALM}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    expected = _md5(f"{ha1}:{params['nonce']}:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}")
    ok = secrets.compare_digest(expected, params.get("response", ""))
    fake.attempts.append((time.monotonic(), username))
    return ok and username == fake.username


def _basic_valid(fake: Fake, header: str) -> bool:
    username, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
    return fake.check(username, password)


async def start_http(fake: Fake, digest: bool) -> None:
    nonces: set[str] = set()

    def answer(method: str, uri: str, authorization: str | None) -> tuple[str, str]:
        if fake.open_without_password:
            return "200 OK", ""
        if authorization and digest and authorization.startswith("Digest "):
            if _digest_valid(fake, method, uri, authorization, nonces):
                return "200 OK", ""
        elif authorization and not digest and authorization.startswith("Basic "):
            if _basic_valid(fake, authorization):
                return "200 OK", ""
        elif authorization:
            fake.attempts.append((time.monotonic(), "?"))
        if digest:
            nonce = secrets.token_hex(16)
            nonces.add(nonce)
            challenge = f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}", opaque="0a1b"'
        else:
            challenge = f'Basic realm="{REALM}"'
        return "401 Unauthorized", f"WWW-Authenticate: {challenge}\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fake.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, uri, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
            status, extra = answer(method, uri, headers.get("authorization"))
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n".encode())
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    fake.port = server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        await server.wait_closed()

    fake.close = close


async def start(protocol: ProbeProtocol, fake: Fake) -> Fake:
    if protocol == "telnet":
        await start_telnet(fake)
    elif protocol == "ssh":
        await start_ssh(fake)
    else:
        await start_http(fake, digest=protocol == "http-digest")
    return fake


async def stop(*fakes: Fake) -> None:
    for fake in fakes:
        if fake.close:
            await fake.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _assert_no_password(finding: ProbeFinding, pairs: list[CredentialPair]) -> None:
    """No password of the pairs tried is in the finding (those with a digit: "admin" or "default" are words)."""
    passwords = [p.password for p in pairs if any(c.isdigit() for c in p.password)]
    assert passwords
    for password in passwords:
        assert password not in repr(finding)


ALL: list[ProbeProtocol] = ["telnet", "ssh", "http-basic", "http-digest"]


# tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ALL)
def test_finds_the_default_pair_and_stops_there(protocol: ProbeProtocol) -> None:
    pair = DEFAULT_OF[protocol]
    pairs = _subset_with(pair)

    async def run() -> tuple[Fake, list[ProbeFinding]]:
        fake = await start(protocol, Fake(*pair))
        try:
            return fake, await probe([_target(protocol, fake.port)], pairs, allowed_hosts=[HOST], rate_per_second=FAST)
        finally:
            await stop(fake)

    fake, findings = asyncio.run(run())
    [finding] = findings
    assert finding.outcome == "accepted"
    assert (finding.device_id, finding.host, finding.port, finding.protocol) == (
        f"dev-{protocol}",
        HOST,
        fake.port,
        protocol,
    )
    assert finding.username == pair[0] and finding.source == "mirai"
    assert pair[0] in finding.message and "mirai" in finding.message and " / " in finding.message
    _assert_no_password(finding, pairs)
    assert pair[1] not in repr(finding)
    # six attempts: five wrong pairs, then the device's; nothing after the success
    assert [user for _, user in fake.attempts] == [p.username for p in pairs[:6]]


@pytest.mark.parametrize("protocol", ALL)
def test_strong_credential_is_refused_after_every_pair(protocol: ProbeProtocol) -> None:
    pairs = _subset_with(DEFAULT_OF[protocol])

    async def run() -> tuple[Fake, list[ProbeFinding]]:
        fake = await start(protocol, Fake(*STRONG))
        try:
            return fake, await probe([_target(protocol, fake.port)], pairs, allowed_hosts=[HOST], rate_per_second=FAST)
        finally:
            await stop(fake)

    fake, [finding] = asyncio.run(run())
    assert finding.outcome == "refused"
    assert finding.username is None
    assert len(fake.attempts) == len(pairs)
    assert str(len(pairs)) in finding.message
    _assert_no_password(finding, pairs)


def test_ssh_keyboard_interactive_only_device() -> None:
    pair = DEFAULT_OF["ssh"]

    async def run() -> tuple[Fake, list[ProbeFinding]]:
        fake = Fake(*pair)
        await start_ssh(fake, keyboard_interactive=True)
        try:
            return fake, await probe(
                [_target("ssh", fake.port)], _subset_with(pair), allowed_hosts=[HOST], rate_per_second=FAST
            )
        finally:
            await stop(fake)

    fake, [finding] = asyncio.run(run())
    assert finding.outcome == "accepted" and finding.username == "root"
    assert fake.attempts[-1][1] == "root"


def test_telnet_refuses_every_option() -> None:
    async def run() -> Fake:
        fake = await start("telnet", Fake(*STRONG))
        try:
            await probe([_target("telnet", fake.port)], mirai_pairs()[:1], allowed_hosts=[HOST], rate_per_second=FAST)
        finally:
            await stop(fake)
        return fake

    fake = asyncio.run(run())
    assert sorted(set(fake.telnet_replies)) == sorted(
        {(DONT, ECHO), (DONT, SUPPRESS_GO_AHEAD), (WONT, TERMINAL_TYPE), (WONT, NAWS)}
    )


@pytest.mark.parametrize("digest", [False, True])
def test_http_device_open_without_any_password(digest: bool) -> None:
    protocol: ProbeProtocol = "http-digest" if digest else "http-basic"

    async def run() -> tuple[Fake, list[ProbeFinding]]:
        fake = await start(protocol, Fake(*STRONG, open_without_password=True))
        try:
            return fake, await probe(
                [_target(protocol, fake.port)], mirai_pairs()[:5], allowed_hosts=[HOST], rate_per_second=FAST
            )
        finally:
            await stop(fake)

    fake, [finding] = asyncio.run(run())
    assert finding.outcome == "accepted"
    assert finding.username is None and finding.source is None
    assert "without any password" in finding.message
    assert fake.connections == 1 and fake.attempts == []


@pytest.mark.parametrize("protocol", ALL)
def test_closed_port_is_unreachable_after_one_try(protocol: ProbeProtocol) -> None:
    port = closed_port()
    findings = asyncio.run(
        probe([_target(protocol, port)], mirai_pairs()[:5], allowed_hosts=[HOST], rate_per_second=FAST, timeout=2)
    )
    assert [(f.outcome, f.port, f.username) for f in findings] == [("unreachable", port, None)]
    assert "does not answer" in findings[0].message


def test_dry_run_makes_no_connection() -> None:
    async def run() -> tuple[list[Fake], list[ProbeFinding]]:
        fakes = [await start(protocol, Fake(*DEFAULT_OF[protocol])) for protocol in ALL]
        try:
            targets = [_target(protocol, fake.port) for protocol, fake in zip(ALL, fakes, strict=True)]
            findings = await probe(targets, mirai_pairs(), allowed_hosts=[HOST], dry_run=True)
            await asyncio.sleep(0.05)  # anything started would have connected by now
            return fakes, findings
        finally:
            await stop(*fakes)

    fakes, findings = asyncio.run(run())
    assert [f.connections for f in fakes] == [0, 0, 0, 0]
    assert [f.outcome for f in findings] == ["skipped-dry-run"] * 4
    assert all("would try 61 credential pairs" in f.message for f in findings)
    assert "without credentials" in findings[2].message


def test_unregistered_host_is_refused_before_any_connection() -> None:
    async def run() -> Fake:
        fake = await start("telnet", Fake(*DEFAULT_OF["telnet"]))
        try:
            registered = _target("telnet", fake.port)
            stranger = ProbeTarget("dev-x", "127.0.0.2", fake.port, "telnet")
            with pytest.raises(ValueError, match=r"127\.0\.0\.2") as caught:
                await probe([registered, stranger], mirai_pairs()[:3], allowed_hosts=[HOST, "192.0.2.10"])
            assert "refusing to probe" in str(caught.value)
            with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
                await probe([registered], mirai_pairs()[:3], allowed_hosts=[], dry_run=True)
            await asyncio.sleep(0.05)
        finally:
            await stop(fake)
        return fake

    assert asyncio.run(run()).connections == 0


def test_registered_address_matches_in_canonical_form() -> None:
    findings = asyncio.run(
        probe(
            [ProbeTarget("dev-6", "::1", 23, "telnet")],
            mirai_pairs()[:1],
            allowed_hosts=["0:0:0:0:0:0:0:1"],
            dry_run=True,
        )
    )
    assert findings[0].outcome == "skipped-dry-run"


def test_attempts_are_paced_globally_across_targets() -> None:
    pairs = _subset_with(DEFAULT_OF["telnet"])[:5]

    async def run() -> list[Fake]:
        fakes = [await start("telnet", Fake(*STRONG)) for _ in range(2)]
        try:
            targets = [_target("telnet", fake.port) for fake in fakes]
            await probe(targets, pairs, allowed_hosts=[HOST], rate_per_second=20)
        finally:
            await stop(*fakes)
        return fakes

    fakes = asyncio.run(run())
    times = sorted(t for fake in fakes for t, _ in fake.attempts)
    assert len(times) == 10
    # at most 20 attempts a second in total: 10 attempts span at least 9/20 s (0.35 s leaves a margin)
    assert times[-1] - times[0] >= 0.35


def test_max_attempts_per_target_and_duplicate_pairs() -> None:
    pairs = _subset_with(DEFAULT_OF["http-basic"])

    async def run() -> tuple[Fake, list[ProbeFinding]]:
        fake = await start("http-basic", Fake(*STRONG))
        try:
            return fake, await probe(
                [_target("http-basic", fake.port)],
                [pairs[0], pairs[0], *pairs[1:]],
                allowed_hosts=[HOST],
                rate_per_second=FAST,
                max_attempts_per_target=3,
            )
        finally:
            await stop(fake)

    fake, [finding] = asyncio.run(run())
    assert finding.outcome == "refused"
    assert [user for _, user in fake.attempts] == [p.username for p in pairs[:3]]


@pytest.mark.parametrize(
    ("argument", "value"),
    [("rate_per_second", 0.0), ("timeout", -1.0), ("max_attempts_per_target", 0)],
)
def test_bad_arguments_are_refused(argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=argument):
        asyncio.run(probe([], [], allowed_hosts=[], **{argument: value}))  # type: ignore[arg-type]
