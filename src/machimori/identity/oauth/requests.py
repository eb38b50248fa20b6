"""A Starlette request as authlib's OAuth 2.0 grants read it."""

from __future__ import annotations

from collections import defaultdict

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from starlette.datastructures import FormData, Headers, QueryParams


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    """Query and form parameters of a request, read before authlib sees it."""

    def __init__(self, query: QueryParams, form: FormData) -> None:
        self._pairs = [*query.multi_items(), *((k, v) for k, v in form.multi_items() if isinstance(v, str))]

    @property
    def data(self) -> dict[str, str]:
        return dict(self._pairs)

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._pairs:
            values[key].append(value)
        return values


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, url: str, headers: Headers, query: QueryParams, form: FormData) -> None:
        super().__init__(method=method, uri=url, headers=headers)
        self.payload = FormPayload(query, form)
        self._query, self._form = query, form

    @property
    def args(self) -> QueryParams:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return {k: v for k, v in self._form.items() if isinstance(v, str)}
