"""Threat indicators: known C&C addresses, networks and domains (ISAC feeds or plain lists) matched against flows."""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import idna

from machimori.detection.flows import Flow
from machimori.detection.reading import ReadReport
from machimori.diagnostics import InputError, Problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The kinds of indicator, named as the STIX 2.1 cyber-observable types they come from.
KINDS = ("ipv4-addr", "ipv6-addr", "domain-name")
#: An indicator file larger than this is refused before it is read.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: How many indicators one set holds at most (memory stays bounded whatever a feed contains).
MAX_INDICATORS = 500_000
#: Addresses learned from DNS answers kept at most; the oldest are forgotten first.
MAX_LEARNED = 100_000
#: Lookups remembered by match_address; the cache starts over when full.
CACHE_SIZE = 65_536
#: Networks broader than this are refused: 0.0.0.0/0 would mark every peer as a C&C server.
MIN_PREFIX = {4: 8, 6: 16}
#: A plain list stops collecting problems after this many (a binary file would give millions).
MAX_PROBLEMS = 100

_BITS = {4: 32, 6: 128}
#: A table key: a domain, an address as (version, integer), or a network's leading bits as an integer.
_Key = str | tuple[int, int] | int
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


class TooBroad(ValueError):
    """A network so broad that matching it would mark (nearly) everything."""


class TooMany(ValueError):
    """The set already holds as many indicators as it may."""


@dataclass(frozen=True, slots=True)
class Indicator:
    """One known-bad address, network or domain, with where it came from and until when it holds."""

    kind: str
    value: str
    source: str = ""
    name: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()
    valid_until: datetime | None = None
    confidence: int | None = None
    resolved_from: str = ""

    def valid_at(self, seconds: float) -> bool:
        """Whether the indicator still holds at a time (seconds since the epoch)."""
        return self.valid_until is None or seconds < self.valid_until.timestamp()

    def outlasts(self, other: Indicator) -> bool:
        """Whether this indicator holds longer than another one for the same value."""
        if other.valid_until is None:
            return False
        return self.valid_until is None or self.valid_until > other.valid_until


def shown(text: str) -> str:
    """A value from the input as a message shows it: quoted, escaped and cut short."""
    return repr(text if len(text) <= 80 else text[:80] + "…")


def normalise(text: str) -> tuple[str, str]:
    """The kind and canonical form of an address, CIDR network or domain; ValueError (ja / en) if none of these."""
    text = text.strip()
    if "/" in text:
        return _network(text)
    address = parse_address(text)
    if address is not None:
        return _kind(address), str(address)
    return "domain-name", normalise_domain(text)


def normalise_domain(name: str) -> str:
    """A domain in lower case, without a trailing dot, non-ASCII labels in IDNA (xn--) form; ValueError if invalid."""
    bare = name.strip().rstrip(".").lower()
    if bare.startswith("*."):
        bare = bare[2:]
    if not bare.isascii():
        try:
            bare = idna.encode(bare, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise ValueError(
                f"国際化ドメイン名として正しくありません / not a valid internationalised domain: {shown(name)}"
            ) from None
    labels = bare.split(".")
    if (
        len(bare) > 253
        or len(labels) < 2
        or labels[-1].isdigit()
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        raise ValueError(
            f"アドレス、ネットワーク、ドメインのいずれでもありません / not an address, network or domain: {shown(name)}"
        )
    return bare


def parse_address(text: str) -> IPAddress | None:
    """An IP address without zone, an IPv4-mapped IPv6 address as the IPv4 one; None if the text is not an address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def _network(text: str) -> tuple[str, str]:
    """The kind and canonical form of a CIDR network (a single host as its address)."""
    try:
        network: IPNetwork = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"ネットワークの書き方が正しくありません / not a valid CIDR network {shown(text)}: {exc}"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        network = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise TooBroad(
            f"ネットワークが広すぎます（/{MIN_PREFIX[network.version]} より短いプレフィックスはすべての通信先に一致します）"
            f" / network too broad: {network} would mark nearly every peer (shortest prefix /{MIN_PREFIX[network.version]})"
        )
    if network.num_addresses == 1:
        return _kind(network.network_address), str(network.network_address)
    return _kind(network.network_address), str(network)


def _kind(address: IPAddress) -> str:
    """The STIX observable type of an address."""
    return "ipv4-addr" if address.version == 4 else "ipv6-addr"


class IndicatorSet:
    """Indicators held for fast matching: exact addresses, networks by prefix length, domains and their answers."""

    def __init__(
        self,
        *,
        max_indicators: int = MAX_INDICATORS,
        max_learned: int = MAX_LEARNED,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_indicators = max_indicators
        self.max_learned = max_learned
        self.clock = clock
        self._cache_size = cache_size
        self._exact: dict[_Key, Indicator] = {}
        self._networks: dict[int, dict[int, dict[_Key, Indicator]]] = {4: {}, 6: {}}
        self._prefixes: dict[int, list[tuple[int, int, dict[_Key, Indicator]]]] = {4: [], 6: []}
        self._domains: dict[_Key, Indicator] = {}
        self._learned: OrderedDict[tuple[int, int], Indicator] = OrderedDict()
        self._cache: dict[str, tuple[Indicator, ...]] = {}
        self._count = 0

    def __len__(self) -> int:
        """How many indicators the set holds (addresses learned from DNS answers not counted)."""
        return self._count

    def __iter__(self) -> Iterator[Indicator]:
        """Every indicator: exact addresses, then networks, then domains."""
        yield from self._exact.values()
        for by_length in self._networks.values():
            for table in by_length.values():
                yield from table.values()
        yield from self._domains.values()

    @property
    def learned(self) -> int:
        """How many addresses learned from DNS answers are held."""
        return len(self._learned)

    def add(
        self,
        value: str,
        *,
        source: str = "",
        name: str = "",
        description: str = "",
        labels: Iterable[str] = (),
        valid_until: datetime | None = None,
        confidence: int | None = None,
    ) -> Indicator:
        """Add an address, network or domain (ValueError if it is none, too broad or one too many); the one kept."""
        kind, canonical = normalise(value)
        if valid_until is not None and valid_until.tzinfo is None:
            valid_until = valid_until.replace(tzinfo=UTC)
        indicator = Indicator(kind, canonical, source, name, description, tuple(labels), valid_until, confidence)
        return self._put(indicator)

    def _put(self, indicator: Indicator) -> Indicator:
        """Store a normalised indicator; of two for the same value, the one that holds longer is kept."""
        table, key = self._slot(indicator)
        kept = table.get(key)
        if kept is not None and not indicator.outlasts(kept):
            return kept
        if kept is None:
            if self._count >= self.max_indicators:
                raise TooMany(f"指標が多すぎます / too many indicators (at most {self.max_indicators})")
            self._count += 1
        table[key] = indicator
        self._cache.clear()
        return indicator

    def _slot(self, indicator: Indicator) -> tuple[dict[_Key, Indicator], _Key]:
        """The table an indicator lives in and its key there."""
        if indicator.kind == "domain-name":
            return self._domains, indicator.value
        if "/" not in indicator.value:
            address = ipaddress.ip_address(indicator.value)
            return self._exact, (address.version, int(address))
        network = ipaddress.ip_network(indicator.value)
        bits = _BITS[network.version]
        by_length = self._networks[network.version]
        if network.prefixlen not in by_length:
            by_length[network.prefixlen] = {}
            lengths = sorted(by_length, reverse=True)
            self._prefixes[network.version] = [(length, bits - length, by_length[length]) for length in lengths]
        table = by_length[network.prefixlen]
        return table, int(network.network_address) >> (bits - network.prefixlen)

    def match_address(self, address: str, at: float | None = None) -> Indicator | None:
        """The indicator an address matches at a time (now by default): exact, learned, then the narrowest network."""
        hits = self._cache.get(address)
        if hits is None:
            hits = self._lookup(address)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[address] = hits
        if not hits:
            return None
        return _first_valid(hits, self.clock() if at is None else at)

    def _lookup(self, text: str) -> tuple[Indicator, ...]:
        """Every indicator an address matches, most specific first, whatever their validity."""
        address = parse_address(text)
        if address is None:
            return ()
        value = int(address)
        key = (address.version, value)
        hits = [hit for hit in (self._exact.get(key), self._learned.get(key)) if hit is not None]
        for _length, shift, table in self._prefixes[address.version]:
            hit = table.get(value >> shift)
            if hit is not None:
                hits.append(hit)
        return tuple(hits)

    def match_flow(self, flow: Flow) -> Indicator | None:
        """The indicator a flow's peer (the endpoint that is not the device) matches at the flow's time."""
        return self.match_address(flow.peer, at=flow.ts)

    def match_domain(self, name: str, at: float | None = None) -> Indicator | None:
        """The indicator a domain or one of its parent domains matches ("evil.example" for "a.evil.example")."""
        if not self._domains:
            return None
        try:
            labels = normalise_domain(name).split(".")
        except ValueError:
            return None
        moment = self.clock() if at is None else at
        for start in range(len(labels) - 1):
            indicator = self._domains.get(".".join(labels[start:]))
            if indicator is not None and indicator.valid_at(moment):
                return indicator
        return None

    def learn_resolution(self, name: str, addresses: list[str]) -> None:
        """Take a DNS answer: the public addresses an indicator domain resolves to match from now on."""
        domain = self.match_domain(name)
        if domain is None:
            return
        for text in addresses:
            address = parse_address(text)
            if address is None or not address.is_global or address.is_multicast:
                continue
            self._learn(address, domain)

    def _learn(self, address: IPAddress, domain: Indicator) -> None:
        """Remember one address of an indicator domain, forgetting the oldest beyond the bound."""
        key = (address.version, int(address))
        learned = Indicator(
            _kind(address),
            str(address),
            domain.source,
            f"{domain.value} の名前解決結果 / resolved from {domain.value}",
            domain.description,
            domain.labels,
            domain.valid_until,
            domain.confidence,
            resolved_from=domain.value,
        )
        if self._learned.get(key) != learned:
            self._cache.clear()
        self._learned[key] = learned
        self._learned.move_to_end(key)
        while len(self._learned) > self.max_learned:
            self._learned.popitem(last=False)


def _first_valid(hits: tuple[Indicator, ...], moment: float) -> Indicator | None:
    """The first indicator still valid at a moment."""
    for hit in hits:
        if hit.valid_at(moment):
            return hit
    return None


def load_indicators(
    path: str | Path,
    into: IndicatorSet | None = None,
    *,
    report: ReadReport | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> IndicatorSet:
    """Indicators from a STIX 2.1 bundle or a plain list (one address, network or domain a line), added to a set."""
    indicators = IndicatorSet() if into is None else into
    report = ReadReport() if report is None else report
    name = str(path)
    text = _text(_read_capped(path, max_bytes), name)
    if text.lstrip()[:1] in ("{", "["):
        from machimori.detection.stix import read_bundle

        read_bundle(text, name, indicators, report)
    else:
        _read_list(text, name, indicators, report)
    return indicators


def _read_capped(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a file, refused when larger than the bound."""
    name = str(path)
    too_big = f"ファイルが大きすぎます / file too large (more than {max_bytes} bytes)"
    try:
        if os.stat(path).st_size > max_bytes:
            raise InputError.single(name, too_big)
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError.single(name, "ファイルが見つかりません / file not found") from None
    except IsADirectoryError:
        raise InputError.single(name, "ディレクトリです / is a directory, expected a file") from None
    except OSError as exc:
        raise InputError.single(name, f"読めません / cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError.single(name, too_big)
    return data


def _text(data: bytes, name: str) -> str:
    """A file's bytes as UTF-8 text (a leading BOM dropped); binary or other encodings are an InputError."""
    if b"\x00" in data:
        raise InputError.single(name, "バイナリファイルです / a binary file, not indicators")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError.single(name, "UTF-8 のテキストではありません / not UTF-8 text", line) from None


def _read_list(text: str, name: str, into: IndicatorSet, report: ReadReport) -> None:
    """Add one address, CIDR network or domain a line (`#` comments, blank lines); every bad line is reported."""
    problems: list[Problem] = []
    more = 0
    for number, line in enumerate(text.split("\n"), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            into.add(entry, source=name)
            report.read += 1
        except TooMany as exc:
            raise InputError.single(name, str(exc), number) from None
        except ValueError as exc:
            if len(problems) < MAX_PROBLEMS:
                problems.append(Problem(name, number, 0, str(exc)))
            else:
                more += 1
    if more:
        problems.append(Problem(name, 0, 0, f"ほかに {more} 行の問題があります / {more} more bad lines"))
    if problems:
        raise InputError(problems)


def load_indicator_files(
    paths: Iterable[str | Path], on_read: Callable[[str | Path, ReadReport], None] | None = None
) -> IndicatorSet | None:
    """One set of the indicators of several files (None when there are none); `on_read` hears each file's report."""
    paths = list(paths)
    if not paths:
        return None
    indicators = IndicatorSet()
    for path in paths:
        report = ReadReport()
        load_indicators(path, into=indicators, report=report)
        if on_read is not None:
            on_read(path, report)
    return indicators
