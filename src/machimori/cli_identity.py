"""Commands of the service plane: accounts and OAuth clients."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from machimori.cli_platform import ConfigOption, DataDirOption, settings_from
from machimori.diagnostics import InputError
from machimori.platform import Platform, open_platform

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
account_app = typer.Typer(help="アカウント / accounts of staff, residents and services.", no_args_is_help=True)
client_app = typer.Typer(help="OAuth クライアント / OAuth clients of service providers.", no_args_is_help=True)


@contextmanager
def _platform(config: Path | None, data_dir: Path | None) -> Iterator[Platform]:
    platform = open_platform(settings_from(config, data_dir))
    if platform.first_admin_token:
        err.print(f"machimori: 管理者トークン (一度だけ表示) / admin token, shown once: {platform.first_admin_token}")
    try:
        yield platform
    finally:
        platform.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("パスワード / password", hide_input=True, confirmation_prompt=True))


@account_app.command("create")
def account_create(
    login: Annotated[str, typer.Option("--login", help="ログイン名 / login")],
    name: Annotated[str, typer.Option("--name", help="表示名 / display name")],
    kind: Annotated[str, typer.Option("--kind", help="staff | resident | service")] = "staff",
    org: Annotated[str | None, typer.Option("--org", help="関係者組織 / stakeholder organisation")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="標準入力から / read it from stdin")] = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="パスキーのみ / passkey only")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """アカウントを作成 / create an account (the password is checked against NIST SP 800-63B-4)."""
    from machimori.identity.accounts import AccountError, Kind
    from machimori.identity.passwords import PasswordRejected, check_new_password

    try:
        chosen = Kind(kind)
    except ValueError:
        raise InputError.single("--kind", f"unknown kind {kind!r}: staff, resident or service") from None
    password = None if no_password else _password(password_stdin)
    if password is not None:
        try:  # refuse a weak password before anything is opened or created
            check_new_password(password, second_factor=False, context=[login, name])
        except PasswordRejected as refused:
            raise InputError.single("password", str(refused)) from None
    with _platform(config, data_dir) as platform:
        try:
            account_id = platform.accounts.create(chosen, login, name, password, org=org)
        except PasswordRejected as refused:
            raise InputError.single("password", str(refused)) from None
        except AccountError as error:
            raise InputError.single("--login", str(error)) from None
    out.print(json.dumps({"id": account_id, "login": login, "kind": chosen.value}))


@account_app.command("grant")
def account_grant(
    account_id: str,
    org: Annotated[str, typer.Option("--org")],
    role: Annotated[str, typer.Option("--role")],
    by: Annotated[str, typer.Option("--by", help="付与する運用者の名前 (監査ログへ) / who at the console grants it")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """役割を付与 / grant a role (never to oneself; separated duties stay separate)."""
    from machimori.identity.accounts import AccountError
    from machimori.policy import Subject

    with _platform(config, data_dir) as platform:
        try:
            operator = by if platform.accounts.kind_of(by) else (platform.accounts.id_of(by) or by)
            platform.accounts.grant(account_id, org, role, by=Subject(operator, "operator"))
        except AccountError as error:
            raise InputError.single("--role", str(error)) from None
    out.print(f"granted {role} in {org} to {account_id}")


@account_app.command("unlock")
def account_unlock(
    account_id: str,
    by: Annotated[str, typer.Option("--by")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """ロック解除 / unlock an account locked after 100 failed sign-ins (audit-logged)."""
    with _platform(config, data_dir) as platform:
        platform.accounts.unlock(account_id, by=by)
    out.print(f"unlocked {account_id}")


@client_app.command("register")
def client_register(
    name: Annotated[str, typer.Option("--name")],
    scope: Annotated[str, typer.Option("--scope", help='e.g. "city:read consent:read"')],
    org: Annotated[str | None, typer.Option("--org")] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri", help="住民向けアプリのリダイレクト先 (複数可) / an app's redirect URI (repeatable)"
        ),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="秘密を持てないアプリ (PKCE のみ) / an app that cannot keep a secret")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """OAuth クライアントを登録 (秘密は一度だけ表示) / register a client; its secret is shown once.

    Without --redirect-uri: a service's backend (client credentials). With it: a resident-facing app
    (authorization code with PKCE, rotating refresh tokens).
    """
    from machimori.identity.oauth.clients import ClientError, register_client
    from machimori.identity.oauth.provider import SCOPES

    unknown = set(scope.split()) - set(SCOPES)
    if unknown:
        raise InputError.single("--scope", f"unknown scope(s) {' '.join(sorted(unknown))}: {' '.join(SCOPES)}")
    if public and not redirect_uri:
        raise InputError.single("--public", "a public client is an app: give its --redirect-uri")
    grant_types = ["authorization_code", "refresh_token"] if redirect_uri else []
    if not public:
        grant_types.append("client_credentials")
    with _platform(config, data_dir) as platform:
        try:
            client_id, secret = register_client(
                platform.database,
                name,
                org=org,
                grant_types=grant_types,
                scope=scope,
                redirect_uris=redirect_uri,
                public=public,
            )
        except ClientError as error:
            raise InputError.single("--redirect-uri", str(error)) from None
        platform.audit.append_sync(
            {"action": "oauth.client.register", "client": client_id, "scope": scope, "by": "cli"}
        )
    out.print(
        json.dumps(
            {
                "client_id": client_id,
                "client_secret": secret,
                "scope": scope,
                "grant_types": grant_types,
                "redirect_uris": redirect_uri or [],
            }
        )
    )
