"""An active default-credential probe of registered devices over telnet, SSH and HTTP, as NICT's NOTICE does."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import asyncssh
import httpx

from machimori.gateway.credentials import CredentialPair
from machimori.gateway.telnet import FAILURE, LOGIN_PROMPT, PASSWORD_PROMPT, SHELL_PROMPT, TelnetSession, expect

ProbeProtocol = Literal["telnet", "ssh", "http-basic", "http-digest"]
Outcome = Literal["accepted", "refused", "unreachable", "skipped-dry-run", "error"]
AttemptOutcome = Literal["accepted", "refused", "unreachable", "error"]

PROTOCOLS: tuple[str, ...] = get_args(ProbeProtocol)
HTTP_PROTOCOLS = ("http-basic", "http-digest")


@dataclass(frozen=True)
class ProbeTarget:
    """One registered device service to probe: its address, port, protocol and (for HTTP) path."""

    device_id: str
    host: str
    port: int
    protocol: ProbeProtocol
    path: str = "/"


@dataclass(frozen=True)
class ProbeFinding:
    """What the probe found on one target; names a pair by username and source, never by its password."""

    device_id: str
    host: str
    port: int
    protocol: ProbeProtocol
    outcome: Outcome
    username: str | None
    message: str
    source: str | None = None


@dataclass(frozen=True)
class Attempt:
    """The result of one login attempt; detail says why when it is unreachable or an error."""

    outcome: AttemptOutcome
    detail: str = ""


AttemptFunction = Callable[[ProbeTarget, CredentialPair, float], Awaitable[Attempt]]


class _Pacer:
    """A global paced schedule: attempt slots at least 1/rate seconds apart, across all targets."""

    def __init__(self, rate_per_second: float) -> None:
        self._interval = 1.0 / rate_per_second
        self._next: float | None = None

    async def wait(self) -> None:
        """Wait for this caller's slot (reserved at once, so concurrent callers queue up)."""
        now = asyncio.get_running_loop().time()
        slot = now if self._next is None else max(now, self._next)
        self._next = slot + self._interval
        await asyncio.sleep(slot - now)


async def probe(
    targets: Iterable[ProbeTarget],
    pairs: Iterable[CredentialPair],
    *,
    allowed_hosts: Collection[str],
    rate_per_second: float = 2.0,
    dry_run: bool = False,
    timeout: float = 5.0,
    max_attempts_per_target: int | None = None,
) -> list[ProbeFinding]:
    """One finding per target: tries the pairs on registered hosts only, paced, stopping at the first success."""
    chosen_targets = list(targets)
    _check_arguments(chosen_targets, allowed_hosts, rate_per_second, timeout, max_attempts_per_target)
    chosen_pairs = _distinct(pairs)[:max_attempts_per_target]
    if dry_run:
        return [_dry_run_finding(target, len(chosen_pairs)) for target in chosen_targets]
    pacer = _Pacer(rate_per_second)
    return list(await asyncio.gather(*(_probe_target(t, chosen_pairs, pacer, timeout) for t in chosen_targets)))


def _check_arguments(
    targets: list[ProbeTarget],
    allowed_hosts: Collection[str],
    rate_per_second: float,
    timeout: float,
    max_attempts: int | None,
) -> None:
    """Raise ValueError, before any connection, for an unregistered host or a bad argument."""
    if not (math.isfinite(rate_per_second) and rate_per_second > 0):
        raise ValueError(f"rate_per_second must be a positive number, got {rate_per_second!r}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts_per_target must be at least 1 or None, got {max_attempts!r}")
    for target in targets:
        if target.protocol not in PROTOCOLS:
            raise ValueError(
                f"unknown protocol {target.protocol!r} for device {target.device_id!r}; use one of {PROTOCOLS}"
            )
        if not 1 <= target.port <= 65535:
            raise ValueError(f"port {target.port!r} of device {target.device_id!r} is not between 1 and 65535")
    registered = {_canonical_host(host) for host in allowed_hosts}
    unregistered = sorted({t.host for t in targets if _canonical_host(t.host) not in registered})
    if unregistered:
        raise ValueError(
            f"登録されていないアドレスは調査しません: {', '.join(unregistered)}"
            f" / refusing to probe addresses no device registered: {', '.join(unregistered)}"
        )


def _canonical_host(host: str) -> str:
    """An IP address in its canonical form, or a host name lower-cased without a trailing dot."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.lower().rstrip(".")


def _distinct(pairs: Iterable[CredentialPair]) -> list[CredentialPair]:
    """The pairs in order, each (username, password) once."""
    seen: dict[tuple[str, str], CredentialPair] = {}
    for pair in pairs:
        seen.setdefault((pair.username, pair.password), pair)
    return list(seen.values())


async def _probe_target(
    target: ProbeTarget, pairs: list[CredentialPair], pacer: _Pacer, timeout: float
) -> ProbeFinding:
    """Try the pairs on one target in order, stopping at the first accepted, unreachable or error."""
    if target.protocol in HTTP_PROTOCOLS:
        await pacer.wait()
        result = await _safely(_http_get(target, None, timeout))
        if result.outcome == "accepted":
            return _finding(
                target,
                "accepted",
                "パスワードなしで操作できます / the device can be controlled without any password",
            )
        if result.outcome != "refused":
            return _failure_finding(target, result, tried=0)
    attempt = ATTEMPTS[target.protocol]
    for tried, pair in enumerate(pairs):
        await pacer.wait()
        result = await _safely(attempt(target, pair, timeout))
        if result.outcome == "accepted":
            return _finding(
                target,
                "accepted",
                f"既定のログイン情報でログインできました（{pair.source} の一覧、ユーザー名 {pair.username}）"
                f" / logged in with a default credential: username {pair.username!r} from the {pair.source} list",
                pair,
            )
        if result.outcome != "refused":
            return _failure_finding(target, _scrubbed(result, pair), tried)
    return _finding(
        target,
        "refused",
        f"{len(pairs)} 組の既定のログイン情報はすべて拒否されました / all {len(pairs)} default credentials were refused",
    )


async def _safely(attempt: Awaitable[Attempt]) -> Attempt:
    """The attempt's result; an unexpected exception becomes an error, so other targets' findings survive."""
    try:
        return await attempt
    except Exception as error:  # one misbehaving device must not lose every other finding
        return Attempt("error", _describe(error))


def _scrubbed(result: Attempt, pair: CredentialPair) -> Attempt:
    """The result with the pair's password removed from its detail, should a library have echoed it."""
    if pair.password and pair.password in result.detail:
        return Attempt(result.outcome, result.detail.replace(pair.password, "…"))
    return result


def _finding(target: ProbeTarget, outcome: Outcome, message: str, pair: CredentialPair | None = None) -> ProbeFinding:
    return ProbeFinding(
        target.device_id,
        target.host,
        target.port,
        target.protocol,
        outcome,
        pair.username if pair else None,
        message,
        pair.source if pair else None,
    )


def _failure_finding(target: ProbeTarget, result: Attempt, tried: int) -> ProbeFinding:
    after = f" ({tried} 組を試した後 / after {tried} pairs)" if tried else ""
    if result.outcome == "unreachable":
        message = f"ポートが応答しません / the port does not answer{after}: {result.detail}"
    else:
        message = f"応答を判定できませんでした / could not judge the device's answer{after}: {result.detail}"
    return _finding(target, result.outcome, message)


def _dry_run_finding(target: ProbeTarget, count: int) -> ProbeFinding:
    extra = " と認証なしの要求 1 回" if target.protocol in HTTP_PROTOCOLS else ""
    extra_en = " and one request without credentials" if target.protocol in HTTP_PROTOCOLS else ""
    return _finding(
        target,
        "skipped-dry-run",
        f"試行なし（{count} 組{extra}を試す予定）/ dry run: would try {count} credential pairs{extra_en}",
    )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _open_socket(host: str, port: int, timeout: float) -> socket.socket:
    """A connected non-blocking TCP socket; OSError or TimeoutError if the port does not answer."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        last = OSError(f"no address for {host}")
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
            except OSError as error:
                sock.close()
                last = error
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last


# telnet ---------------------------------------------------------------------------------------------


async def telnet_attempt(target: ProbeTarget, pair: CredentialPair, timeout: float) -> Attempt:
    """One telnet login on a fresh connection: the prompt, the username, the password, then the verdict."""
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        sock = await _open_socket(target.host, target.port, timeout)
    except (OSError, TimeoutError) as error:
        return Attempt("unreachable", _describe(error))
    reader, writer = await asyncio.open_connection(sock=sock)
    telnet = TelnetSession(reader, writer)
    sent_password = False
    try:
        if await expect(telnet, {"login": LOGIN_PROMPT}, deadline) != "login":
            return Attempt("error", f"no login prompt / ログインプロンプトがありません: {telnet.text[-80:]!r}")
        await telnet.send_line(pair.username)
        after = {"shell": SHELL_PROMPT, "password": PASSWORD_PROMPT, "login": LOGIN_PROMPT}
        answer = await expect(telnet, after, deadline)
        if answer == "password":
            await telnet.send_line(pair.password)
            sent_password = True
            answer = await expect(telnet, after, deadline)
        return _telnet_verdict(answer, telnet.text)
    except ConnectionError as error:
        return Attempt("refused" if sent_password else "error", _describe(error))
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()


def _telnet_verdict(answer: str | None, text: str) -> Attempt:
    """A shell prompt is accepted; a new prompt, the end of the stream or a failure word is refused."""
    if answer == "shell":
        return Attempt("accepted")
    if answer in ("password", "login", "eof") or FAILURE.search(text):
        return Attempt("refused")
    return Attempt("error", f"no recognisable answer in time / 時間内に判定できる応答がありません: {text[-80:]!r}")


# ssh ------------------------------------------------------------------------------------------------


async def ssh_attempt(target: ProbeTarget, pair: CredentialPair, timeout: float) -> Attempt:
    """One SSH login by password or keyboard-interactive only: no agent, no keys, any host key."""
    try:
        sock = await _open_socket(target.host, target.port, timeout)
    except (OSError, TimeoutError) as error:
        return Attempt("unreachable", _describe(error))
    try:
        async with asyncio.timeout(timeout):
            connection = await asyncssh.connect(
                target.host,
                target.port,
                sock=sock,
                config=[],
                known_hosts=None,  # auditing, not trusting: any host key is fine
                username=pair.username,
                password=pair.password,
                preferred_auth="password,keyboard-interactive",
                client_keys=None,
                agent_path=None,
                agent_forwarding=False,
                gss_host=None,
                x509_trusted_certs=None,
                login_timeout=timeout,
            )
    except asyncssh.PermissionDenied:
        return Attempt("refused")
    except (asyncssh.Error, OSError, TimeoutError) as error:
        sock.close()
        return Attempt("error", _describe(error))
    connection.close()
    with contextlib.suppress(OSError, TimeoutError, asyncssh.Error):
        async with asyncio.timeout(1.0):
            await connection.wait_closed()
    return Attempt("accepted")


# http -----------------------------------------------------------------------------------------------


def _url(target: ProbeTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    path = target.path if target.path.startswith("/") else f"/{target.path}"
    return f"http://{host}:{target.port}{path}"


async def _http_get(target: ProbeTarget, auth: httpx.Auth | None, timeout: float) -> Attempt:
    """One GET: 2xx is accepted, 401/403 refused, anything else an error; no proxies, no redirects."""
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            response = await client.get(_url(target), auth=auth)
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        return Attempt("unreachable", _describe(error))
    except httpx.HTTPError as error:
        return Attempt("error", _describe(error))
    if response.is_success:
        return Attempt("accepted")
    if response.status_code in (401, 403):
        return Attempt("refused")
    return Attempt("error", f"unexpected HTTP status / 想定外の応答 {response.status_code}")


async def http_basic_attempt(target: ProbeTarget, pair: CredentialPair, timeout: float) -> Attempt:
    """One GET with HTTP Basic authentication."""
    return await _http_get(target, httpx.BasicAuth(pair.username, pair.password), timeout)


async def http_digest_attempt(target: ProbeTarget, pair: CredentialPair, timeout: float) -> Attempt:
    """One GET with HTTP Digest authentication (the challenge, then the answer)."""
    return await _http_get(target, httpx.DigestAuth(pair.username, pair.password), timeout)


ATTEMPTS: dict[str, AttemptFunction] = {
    "telnet": telnet_attempt,
    "ssh": ssh_attempt,
    "http-basic": http_basic_attempt,
    "http-digest": http_digest_attempt,
}
