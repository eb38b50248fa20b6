"""The few HTML pages a person sees in a browser: sign-in, the consent screen and errors."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

_environment = Environment(
    loader=PackageLoader("machimori.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Pages are never framed (clickjacking a consent button) and run only their own inline script.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; form-action 'self' {form_action}; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def page(template: str, status: int = 200, form_action: str = "", **context: Any) -> HTMLResponse:
    """A rendered page with headers that keep it out of frames and caches."""
    html = _environment.get_template(template).render(**context)
    headers = dict(_HEADERS)
    headers["Content-Security-Policy"] = headers["Content-Security-Policy"].format(form_action=form_action).strip()
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(status: int, message: str) -> HTMLResponse:
    return page("error.html.j2", status, title="エラー / Error", message=message)
