"""Commands of the running platform: serve, audit, token, db."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from machimori.config import Settings, load_settings
from machimori.diagnostics import InputError, Problem, read_user_file, write_user_file

if TYPE_CHECKING:
    from machimori.audit.log import AuditLog

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

audit_app = typer.Typer(help="監査ログ / the tamper-evident audit log.", no_args_is_help=True)
key_app = typer.Typer(help="署名鍵 / signing keys of the log and of witnesses.", no_args_is_help=True)
token_app = typer.Typer(help="APIトークン / API tokens.", no_args_is_help=True)
db_app = typer.Typer(help="データベース / the database.", no_args_is_help=True)
audit_app.add_typer(key_app, name="key")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="設定ファイル (TOML) / config file")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="データディレクトリ / data directory")]
HostOption = Annotated[str | None, typer.Option(help="待ち受けアドレス / address to listen on")]
PortOption = Annotated[int | None, typer.Option(help="ポート / port")]
DatabaseUrlOption = Annotated[str | None, typer.Option(help="SQLAlchemy URL (PostgreSQL for production)")]
TlsCertOption = Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")]
TlsKeyOption = Annotated[Path | None, typer.Option(help="TLS private key (PEM)")]
BehindProxyOption = Annotated[
    bool, typer.Option("--behind-tls-proxy", help="TLS を終端するプロキシの背後 / a TLS proxy is in front")
]


def settings_from(config: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, data_dir=data_dir, **overrides)


def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: HostOption = None,
    port: PortOption = None,
    database_url: DatabaseUrlOption = None,
    city_model: Annotated[Path | None, typer.Option(help="都市モデル / city model to serve")] = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    behind_tls_proxy: BehindProxyOption = False,
) -> None:
    """サーバーを起動 / run the machimori server."""
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
    )
    run_server(settings)


def check_bind(settings: Settings) -> None:
    """A public address needs TLS here or a declared TLS proxy in front (and the conformance test
    setting is refused on it)."""
    from machimori.hub.conformance import refuse_public

    refuse_public(settings)
    if settings.loopback or settings.behind_tls_proxy:
        return
    if settings.tls_cert is None or settings.tls_key is None:
        raise InputError.single(
            "--host",
            f"{settings.host} はループバックではありません: --tls-cert/--tls-key か --behind-tls-proxy が必要です / "
            "a non-loopback address needs --tls-cert and --tls-key, or --behind-tls-proxy",
        )


def run_server(settings: Settings, banner: list[str] | None = None) -> None:
    """Open the platform and serve until SIGINT/SIGTERM, then commit what is queued and stop."""
    import uvicorn

    from machimori.governance.served import load_city
    from machimori.platform import open_platform
    from machimori.web.app import create_app
    from machimori.web.logs import configure_logging

    check_bind(settings)
    log_config = configure_logging(settings.log_level, settings.log_format)
    city = load_city(settings.city_model) if settings.city_model else None
    platform = open_platform(settings)
    scheme = "https" if settings.tls_cert else "http"
    err.print(f"machimori: listening on {scheme}://{settings.host}:{settings.port}  (data: {settings.data_dir})")
    if platform.first_admin_token:
        err.print(
            "machimori: 管理者トークン (一度だけ表示) / admin token, shown once — keep it safe:\n"
            f"  {platform.first_admin_token}"
        )
    for line in banner or []:
        err.print(line)
    uvicorn.run(
        create_app(platform, city=city),
        host=settings.host,
        port=settings.port,
        log_config=log_config,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


def _open_log(settings: Settings) -> AuditLog:
    from machimori.audit.keys import signing_keys
    from machimori.audit.log import AuditLog, OriginMismatch
    from machimori.storage import open_database

    database = open_database(settings.sqlalchemy_url, synchronous=settings.sqlite_synchronous)
    try:
        return AuditLog(database, settings.audit_origin, signing_keys(settings.keys_dir, settings.audit_origin))
    except OriginMismatch as error:
        raise InputError.single("audit_origin", str(error)) from None


def read_json_file(path: Path) -> Any:
    """A JSON file the user named; a syntax error is reported at file:line:column."""
    data = read_user_file(path)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError.single(str(path), "UTF-8 ではありません / not UTF-8") from None
    except json.JSONDecodeError as error:
        raise InputError([Problem(str(path), error.lineno, error.colno, f"JSON の誤り / {error.msg}")]) from None


@audit_app.command("append")
def audit_append(
    file: Annotated[Path, typer.Argument(help="記録する JSON オブジェクト / the JSON object to record")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """監査ログに記録 / record a JSON object in the log (the same single writer as the server)."""
    from machimori.audit.log import EntryRejected

    entry = read_json_file(file)
    log = _open_log(settings_from(config, data_dir))
    try:
        appended = log.append_sync(entry)
    except EntryRejected as error:
        raise InputError.single(str(file), str(error)) from None
    finally:
        log.close()
        log.database.dispose()
    out.print(json.dumps({"index": appended.index, "leaf_hash": base64.b64encode(appended.leaf_hash).decode()}))


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="保存先 / save to file")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """署名付きチェックポイント / the signed checkpoint of the current tree (save it to verify later)."""
    log = _open_log(settings_from(config, data_dir))
    try:
        note = log.checkpoint()
    finally:
        log.close()
        log.database.dispose()
    if output:
        write_user_file(output, note)
        err.print(f"wrote {output}")
    else:
        out.print(note, end="")


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="出力ファイル / export file (JSON Lines)")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """エクスポート / write the whole log for offline verification."""
    log = _open_log(settings_from(config, data_dir))
    try:
        lines = 0
        with output.open("w", encoding="utf-8") as handle:
            for line in log.export():
                handle.write(line)
                lines += 1
        size = lines - 2  # the header and the end line
    except OSError as error:
        raise InputError.single(str(output), f"cannot write: {error.strerror or error}") from None
    finally:
        log.close()
        log.database.dispose()
    err.print(f"wrote {output} ({size} entries)")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="以前に保存したチェックポイント / a checkpoint saved earlier")
    ] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="検証鍵 (文字列かファイル) / verifier key (string or file)")
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log", help="エクスポート (オフライン検証) / an export file: verify offline")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """改ざん検証 / verify the log: exit 0 if intact, 1 with each tampered index, 2 on bad input."""
    from machimori.audit.checks import trusted_checkpoint, verify_database, verify_export
    from machimori.audit.keys import read_verifier, signing_dir

    settings = settings_from(config, data_dir)
    if key:
        verifiers = [read_verifier(k) for k in key]
    elif log_file is not None:
        raise InputError.single("--key", "オフライン検証には公開鍵が必要です / offline verification needs --key")
    else:
        verifiers = [read_verifier(str(p)) for p in sorted(signing_dir(settings.keys_dir).glob("*.vkey"))]
        if not verifiers:
            raise InputError.single(str(signing_dir(settings.keys_dir)), "no verifier key (*.vkey) here; give --key")
    saved = None
    if checkpoint is not None:
        saved = trusted_checkpoint(read_user_file(checkpoint).decode("utf-8", "replace"), str(checkpoint), verifiers)
    if log_file is not None:
        report = verify_export(log_file, verifiers, saved)
    else:
        from machimori.storage import open_database

        database = open_database(settings.sqlalchemy_url, migrate=False)
        try:
            report = verify_database(database, verifiers, saved)
        finally:
            database.dispose()
    anchors = ", ".join(str(size) for size in report.anchors) or "none"
    if report.ok:
        out.print(
            f"OK: {report.entries} 件すべて検証済み / all {report.entries} entries verified; "
            f"signed checkpoints matched at sizes: {anchors}"
        )
        if report.uncovered:
            out.print(f"note: the last {report.uncovered} entries are not yet covered by a signed checkpoint")
        return
    out.print(f"TAMPERED: {len(report.findings)} 件の問題 / problem(s) found in {report.entries} entries")
    for finding in report.findings:
        out.print("  " + finding.describe())
    raise typer.Exit(1)


@audit_app.command("witness")
def audit_witness(
    server: Annotated[str, typer.Option(help="ログのサーバー / the log's server URL")],
    key: Annotated[Path, typer.Option("--key", help="証人の秘密鍵 / the witness's private key")],
    log_key: Annotated[str, typer.Option("--log-key", help="ログの検証鍵 / the log's verifier key")],
    state: Annotated[Path, typer.Option(help="最後に連署した状態 / where the witness keeps what it has seen")],
) -> None:
    """証人として連署 / as a witness: check the log only grew, then cosign its checkpoint."""
    import httpx

    from machimori.audit.keys import read_signer, read_verifier
    from machimori.audit.witness import WitnessRefusal, witness_once

    try:
        checkpoint = witness_once(server, read_verifier(log_key), read_signer(key), state)
    except WitnessRefusal as error:
        out.print(f"REFUSED: {error}")
        raise typer.Exit(1) from None
    except (httpx.HTTPError, ValueError) as error:
        raise InputError.single(server, f"the log's server did not answer as expected: {error}") from None
    out.print(f"cosigned {checkpoint.origin} at size {checkpoint.size}")


@key_app.command("show")
def key_show(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """ログの検証鍵を表示 / print the log's verifier key(s) to publish."""
    from machimori.audit.keys import signing_keys

    settings = settings_from(config, data_dir)
    for signer in signing_keys(settings.keys_dir, settings.audit_origin):
        out.print(str(signer.verifier))


@key_app.command("generate")
def key_generate(
    name: Annotated[str, typer.Argument(help="鍵の名前 (ログの origin など) / key name, e.g. the log origin")],
    output: Annotated[Path, typer.Option("-o", "--output", help="秘密鍵ファイル / private key file (mode 0600)")],
    witness: Annotated[bool, typer.Option("--witness", help="証人の連署鍵 / a witness cosigning key")] = False,
) -> None:
    """新しい署名鍵 / generate a signing key (for rotation) or a witness key; prints the verifier key."""
    from machimori.audit.keys import write_private_key
    from machimori.audit.note import COSIGNATURE_V1, ED25519, NoteError, Signer

    try:
        signer = Signer.generate(name, COSIGNATURE_V1 if witness else ED25519)
        write_private_key(output, signer)
    except NoteError as error:
        raise InputError.single("NAME", str(error)) from None
    except FileExistsError:
        raise InputError.single(str(output), "already exists; not overwritten / 上書きしません") from None
    output.with_suffix(".vkey").write_text(str(signer.verifier) + "\n", encoding="ascii")
    out.print(str(signer.verifier))


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="持ち主 / who holds it")],
    role: Annotated[str, typer.Option("--role", help="admin | recorder | auditor | sensor")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """APIトークンを発行 (一度だけ表示) / issue an API token (shown once)."""
    from machimori.identity.tokens import Role, create_token
    from machimori.storage import open_database

    try:
        chosen = Role(role)
    except ValueError:
        raise InputError.single("--role", f"unknown role {role!r}: admin, recorder, auditor or sensor") from None
    settings = settings_from(config, data_dir)
    database = open_database(settings.sqlalchemy_url)
    try:
        principal, secret = create_token(database, name, chosen)
    finally:
        database.dispose()
    log = _open_log(settings)
    try:
        log.append_sync({"action": "token.create", "token": principal.token_id, "role": chosen.value, "by": "cli"})
    finally:
        log.close()
        log.database.dispose()
    out.print(json.dumps({"id": principal.token_id, "name": name, "role": chosen.value, "token": secret}))


@token_app.command("revoke")
def token_revoke(token_id: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """トークンを失効 / revoke a token."""
    from machimori.identity.tokens import revoke_token
    from machimori.storage import open_database

    settings = settings_from(config, data_dir)
    database = open_database(settings.sqlalchemy_url)
    try:
        if not revoke_token(database, token_id):
            raise InputError.single("TOKEN_ID", f"no active token {token_id}")
    finally:
        database.dispose()
    out.print(f"revoked {token_id}")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """スキーマを最新に / migrate the database schema to this version."""
    from machimori.storage import open_database
    from machimori.storage.migrate import current_revision

    settings = settings_from(config, data_dir)
    database = open_database(settings.sqlalchemy_url)
    out.print(f"schema at {current_revision(database)}")
    database.dispose()
