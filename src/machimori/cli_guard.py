"""The `machimori guard` command: the platform's enforcement in front of an existing NGSI-LD broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from machimori.cli_platform import (
    BehindProxyOption,
    ConfigOption,
    DatabaseUrlOption,
    DataDirOption,
    HostOption,
    PortOption,
    TlsCertOption,
    TlsKeyOption,
    check_bind,
    err,
    settings_from,
)
from machimori.config import Settings
from machimori.diagnostics import InputError


def guard(
    upstream: Annotated[
        str | None, typer.Option(help="守るブローカー / the NGSI-LD broker to guard, e.g. http://orion:1026")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: HostOption = None,
    port: PortOption = None,
    database_url: DatabaseUrlOption = None,
    city_model: Annotated[Path | None, typer.Option(help="都市モデル / city model (classifies entities)")] = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    behind_tls_proxy: BehindProxyOption = False,
) -> None:
    """既存の NGSI-LD ブローカーの前に立つ / guard an existing NGSI-LD broker (Orion-LD, Scorpio, Stellio)."""
    settings = settings_from(
        config,
        data_dir,
        host=host,
        port=port,
        database_url=database_url,
        city_model=city_model,
        tls_cert=tls_cert,
        tls_key=tls_key,
        behind_tls_proxy=behind_tls_proxy or None,
        guard_upstream=upstream,
    )
    run_guard(settings)


def run_guard(settings: Settings) -> None:
    """Open the platform and serve /ngsi-ld/v1 by guarding the upstream until SIGINT/SIGTERM."""
    import uvicorn

    from machimori.hub.guard import install_guard
    from machimori.hub.upstream import Upstream, checked_url
    from machimori.platform import open_platform
    from machimori.web.app import create_app
    from machimori.web.logs import configure_logging

    if settings.guard_upstream is None:
        raise InputError.single(
            "--upstream", "守るブローカーの URL が必要です / the URL of the broker to guard is required"
        )
    base = checked_url(settings.guard_upstream)
    if settings.hub_conformance_tenant is not None:
        raise InputError.single(
            "hub_conformance_tenant",
            "ガードは適合試験モードを受け付けません / the guard does not take the conformance setting",
        )
    check_bind(settings)
    log_config = configure_logging(settings.log_level, settings.log_format)
    platform = open_platform(settings)
    upstream = Upstream(base, settings.guard_upstream_token)
    scheme = "https" if settings.tls_cert else "http"
    err.print(f"machimori: guarding {base} on {scheme}://{settings.host}:{settings.port}  (data: {settings.data_dir})")
    if platform.first_admin_token:
        err.print(
            "machimori: 管理者トークン (一度だけ表示) / admin token, shown once — keep it safe:\n"
            f"  {platform.first_admin_token}"
        )
    uvicorn.run(
        create_app(platform, ngsi_ld=lambda app, opened: install_guard(app, opened, upstream)),
        host=settings.host,
        port=settings.port,
        log_config=log_config,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
