"""@context handling: local documents only, term expansion and compaction with cached active contexts.

The ETSI core contexts ship with the package (hub/contexts, see its README for where each copy came
from); an operator may add a folder of further documents, served for the URLs its `urls.json` maps to
file names. Nothing is fetched from the network unless the operator allows
it, and then only over http(s), with a time-out and a size bound, and cached.

Expansion follows JSON-LD for what NGSI-LD needs: attribute names and type names are terms of the
active context (the request's @context on top of the core context), compact IRIs (`prefix:suffix`),
absolute IRIs, or fall back to `@vocab` (the ETSI default context). PyLD processes each distinct
@context once; expanding and compacting terms afterwards is a dictionary lookup.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import httpx
from pyld import jsonld

from machimori.hub.errors import ErrorType, NgsiLdError

ETSI = "https://uri.etsi.org/ngsi-ld/v1/"
CORE_CONTEXT = ETSI + "ngsi-ld-core-context-v1.8.jsonld"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
MAX_DOCUMENT_BYTES = 1 << 20
FETCH_SECONDS = 5.0
_SHIPPED = {
    ETSI + "ngsi-ld-core-context.jsonld": "ngsi-ld-core-context.jsonld",
    **{
        ETSI + f"ngsi-ld-core-context-v1.{minor}.jsonld": f"ngsi-ld-core-context-v1.{minor}.jsonld"
        for minor in (3, 4, 6, 7, 8)
    },
}

Fetch = Callable[[str], bytes]
Hosted = Callable[[str], Any]  # a hosted @context's document by its local id (None if there is none)
HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"
ContextValue = str | dict[str, Any] | list[Any] | None


def fetch_context(url: str) -> bytes:
    """An @context document from the web (only when the operator allows it): https, a few seconds, bounded."""
    if not url.startswith("https://"):
        raise ValueError("only https @context URLs are fetched")
    with httpx.stream(
        "GET", url, timeout=5.0, follow_redirects=False, headers={"Accept": "application/ld+json"}
    ) as answer:
        answer.raise_for_status()
        body = b""
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                break
    return body


class DocumentLoader:
    """Serves @context documents by URL from the hub's hosted contexts, the package, an operator's folder, or (if
    allowed) the web."""

    def __init__(self, extra_dir: Path | None = None, fetch: Fetch | None = None, hosted: Hosted | None = None) -> None:
        self._documents: dict[str, Any] = {}
        self._loaded_at: dict[str, dt.datetime] = {}
        self._hosted = hosted
        shipped = resources.files("machimori.hub").joinpath("contexts")
        self._files: dict[str, Traversable] = {url: shipped.joinpath(name) for url, name in _SHIPPED.items()}
        if extra_dir is not None:
            self._files.update(_folder(extra_dir))
        self._fetch = fetch
        self._lock = threading.Lock()

    def document(self, url: str) -> Any:
        """The parsed document at url; LdContextNotAvailable if it is neither local nor fetchable."""
        if self._hosted is not None and HOSTED_PATH in url:  # ours: from the database, never cached here
            document = self._hosted(url.rsplit(HOSTED_PATH, 1)[1])
            if document is not None:
                return document
        with self._lock:
            found = self._documents.get(url)
        if found is not None:
            return found
        local = self._files.get(url)
        if local is not None:
            document = json.loads(local.read_bytes())
        elif self._fetch is not None and url.startswith(("https://", "http://")):
            try:
                raw = self._fetch(url)
            except Exception as error:  # any failure to fetch is the same answer to the client
                raise _unavailable(url, f"could not be fetched: {type(error).__name__}") from None
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise _unavailable(url, f"is larger than {MAX_DOCUMENT_BYTES} bytes")
            try:
                document = json.loads(raw)
            except ValueError:
                raise _unavailable(url, "is not JSON") from None
        else:
            raise _unavailable(url, "is not served by this broker (remote contexts are off)")
        with self._lock:
            self._documents[url] = document
            self._loaded_at.setdefault(url, dt.datetime.now(dt.UTC))
        return document

    def is_local(self, url: str) -> bool:
        """Whether the broker holds a file for url (shipped, or in the operator's folder)."""
        return url in self._files

    def is_core(self, url: str) -> bool:
        """Whether url names one of the ETSI core contexts the broker ships."""
        return url in _SHIPPED

    def held(self, url: str) -> tuple[Any, dt.datetime] | None:
        """A document the broker holds for url without fetching anything (shipped, the operator's folder, or
        already cached), and when it was loaded; None if it holds none."""
        with self._lock:
            if url in self._documents:
                return self._documents[url], self._loaded_at[url]
        if url not in self._files:
            return None
        document = self.document(url)
        return document, self._loaded_at[url]

    def cached(self) -> list[tuple[str, dt.datetime]]:
        """The URLs of the documents held now, with when each was loaded."""
        with self._lock:
            return sorted(self._loaded_at.items())

    def forget(self, url: str) -> bool:
        """Drop a cached document (it is loaded again when next used); whether one was held."""
        with self._lock:
            self._loaded_at.pop(url, None)
            return self._documents.pop(url, None) is not None

    def pyld_loader(self, url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """The loader in the shape PyLD calls."""
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": self.document(url),
        }


def _folder(folder: Path) -> dict[str, Traversable]:
    """An operator's extra documents: `urls.json` in the folder maps URLs to file names in it."""
    index = folder / "urls.json"
    names = json.loads(index.read_text(encoding="utf-8")) if index.exists() else {}
    return {str(url): folder / str(name) for url, name in names.items()}


def _unavailable(url: str, why: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.LdContextNotAvailable, f"the @context {url!r} {why} / @context を取得できません")


@dataclass(frozen=True)
class ActiveContext:
    """The terms of one request's @context (over the core context), ready for lookups both ways."""

    source: tuple[str, ...]
    terms: dict[str, str]
    vocab: str
    _reverse: dict[str, str] = field(default_factory=dict)
    _prefixes: tuple[tuple[str, str], ...] = ()

    def expand(self, term: str) -> str:
        """The IRI a term, compact IRI or IRI stands for."""
        found = self.terms.get(term)
        if found is not None:
            return found
        prefix, colon, suffix = term.partition(":")
        if colon:
            if suffix.startswith("//") or prefix in ("urn", "http", "https"):
                return term
            base = self.terms.get(prefix)
            if base is not None:
                return base + suffix
            return term
        return self.vocab + term

    def compact(self, iri: str) -> str:
        """The shortest name the context gives the IRI (a term, a compact IRI), or the IRI itself."""
        term = self._reverse.get(iri)
        if term is not None:
            return term
        if iri.startswith(self.vocab) and self.vocab:
            rest = iri[len(self.vocab) :]
            if rest and self.terms.get(rest, iri) == iri and ":" not in rest:
                return rest
        for base, prefix in self._prefixes:  # longest first
            if iri.startswith(base) and len(iri) > len(base):
                return f"{prefix}:{iri[len(base) :]}"
        return iri


class Contexts:
    """Active contexts by the @context a request gave, each processed once (bounded cache)."""

    def __init__(self, loader: DocumentLoader, core: str = CORE_CONTEXT, limit: int = 1024) -> None:
        self.loader, self.core, self.limit = loader, core, limit
        self._cache: dict[str, ActiveContext] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every processed context (a hosted @context was deleted: requests naming it must fail now)."""
        with self._lock:
            self._cache.clear()

    def active(self, context: ContextValue) -> ActiveContext:
        """The active context for a request's @context (None: the core context alone)."""
        key = json.dumps(context, sort_keys=True, separators=(",", ":"))
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        active = self._process(context)
        with self._lock:
            if len(self._cache) >= self.limit:
                self._cache.clear()
            self._cache[key] = active
        return active

    def _process(self, context: ContextValue) -> ActiveContext:
        local: list[Any] = [self.core]
        if context is not None:
            given = context if isinstance(context, list) else [context]
            local.extend(item for item in given if not (isinstance(item, str) and item in _SHIPPED))  # our core rules
        _check_shape(local)
        options = {"documentLoader": self.loader.pyld_loader, "base": None}
        try:
            processed = jsonld.JsonLdProcessor().process_context(
                {"mappings": {}, "processingMode": "json-ld-1.1"}, local, options
            )
        except jsonld.JsonLdError as error:
            cause = _cause(error)
            if isinstance(cause, NgsiLdError):
                raise cause from None
            raise NgsiLdError(ErrorType.BadRequestData, f"invalid @context: {_describe(error)}") from None
        terms = {
            term: str(definition["@id"])
            for term, definition in processed.get("mappings", {}).items()
            if definition and isinstance(definition.get("@id"), str) and not term.startswith("@")
        }
        reverse: dict[str, str] = {}
        for term in sorted(terms, key=lambda t: (len(t), t)):
            reverse.setdefault(terms[term], term)
        prefixes = sorted(
            ((iri, term) for term, iri in terms.items() if iri.endswith(("/", "#", ":")) and ":" not in term),
            key=lambda pair: (-len(pair[0]), pair[1]),
        )
        sources = tuple(item if isinstance(item, str) else json.dumps(item, sort_keys=True) for item in local)
        vocab = str(processed.get("@vocab") or DEFAULT_VOCAB)
        return ActiveContext(sources, terms, vocab, reverse, tuple(prefixes))


def _check_shape(items: Sequence[Any]) -> None:
    for item in items:
        if not isinstance(item, str | dict):
            raise NgsiLdError(ErrorType.BadRequestData, "an @context entry must be a URL or an object")


def _cause(error: BaseException) -> BaseException | None:
    """The innermost cause PyLD wrapped (our LdContextNotAvailable travels through it)."""
    seen = error
    while True:
        nested = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
        if nested is None or nested is seen:
            return seen
        if isinstance(nested, NgsiLdError):
            return nested
        seen = nested


def _describe(error: Any) -> str:
    return str(getattr(error, "type", "") or type(error).__name__)
