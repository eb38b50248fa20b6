"""Commands of the asset plane: the device registry, device audits and the simulated fleet."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from rich.console import Console
from rich.table import Table

from machimori.cli_platform import ConfigOption, DataDirOption, settings_from
from machimori.diagnostics import InputError
from machimori.gateway.registry import DeviceKey, DeviceRecord, DeviceStatus, NewDevice, Registry, RegistryError
from machimori.keyfiles import create_private_file
from machimori.platform import open_platform

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
device_app = typer.Typer(help="機器 / the device registry, device audits and quarantine.", no_args_is_help=True)
CLI_ACTOR = "cli"

KeyOption = Annotated[str | None, typer.Option("--public-key", help="Ed25519 公開鍵 (PEM ファイル、hex、base64)")]
SecretOption = Annotated[
    Path | None, typer.Option("--hmac-secret-file", help="HMAC 秘密鍵のファイル (32 バイト以上) / for tiny devices")
]
GenerateOption = Annotated[
    Path | None,
    typer.Option("--generate-key", help="鍵を生成し秘密鍵を PEM で書き出す / make a key pair, write the private key"),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="理由 (監査ログに残ります) / reason, audit-logged")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON で出力 / print JSON")]


@contextmanager
def _registry(config: Path | None, data_dir: Path | None) -> Iterator[Registry]:
    from machimori.gateway.service import open_registry

    platform = open_platform(settings_from(config, data_dir))
    if platform.first_admin_token:
        err.print(f"machimori: 管理者トークン (一度だけ表示) / admin token, shown once: {platform.first_admin_token}")
    try:
        yield open_registry(platform)
    except RegistryError as error:
        raise InputError.single("device", str(error)) from None
    finally:
        platform.close()


def _key(public_key: str | None, secret_file: Path | None, generate: Path | None) -> tuple[DeviceKey, bytes | None]:
    """The device's key, and (with --generate-key) the private key's PEM to write once the registry took it."""
    from machimori.gateway.inventory import parse_public_key

    if sum(given is not None for given in (public_key, secret_file, generate)) != 1:
        raise InputError.single(
            "--public-key", "give one of --public-key, --hmac-secret-file, --generate-key / 鍵をひとつ指定してください"
        )
    try:
        if generate is not None:
            if generate.exists():
                raise InputError.single(str(generate), "already exists; not overwritten / 上書きしません")
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            return DeviceKey.ed25519(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)), pem
        if secret_file is not None:
            return DeviceKey.hmac_secret(secret_file.read_bytes().strip()), None
        assert public_key is not None
        text = Path(public_key).read_text(encoding="ascii") if Path(public_key).is_file() else public_key
        return parse_public_key(text), None
    except RegistryError as error:
        raise InputError.single("--public-key", str(error)) from None
    except OSError as error:
        raise InputError.single(str(secret_file or public_key), f"cannot read: {error.strerror}") from None


def _write_private_key(path: Path | None, pem: bytes | None) -> None:
    """Write a generated private key (mode 0600) once the registry has taken its public half."""
    if path is not None and pem is not None and not create_private_file(path, pem):
        raise InputError.single(str(path), "already exists; not overwritten / 上書きしません")


def _print(record: DeviceRecord) -> None:
    out.print(json.dumps(record.public(), ensure_ascii=False))


@device_app.command("add")
def device_add(
    device_id: Annotated[str, typer.Argument(help="機器 ID / device id")],
    model: Annotated[str, typer.Option("--model", help="機器モデル / device model id")],
    owner: Annotated[str, typer.Option("--owner", help="所有する関係者 / owning stakeholder")],
    vendor: Annotated[str | None, typer.Option("--vendor", help="機器ベンダー / device vendor")] = None,
    public_key: KeyOption = None,
    hmac_secret_file: SecretOption = None,
    generate_key: GenerateOption = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    location: Annotated[str | None, typer.Option("--location", help="経度,緯度 / longitude,latitude")] = None,
    address: Annotated[str | None, typer.Option("--address", help="ネットワークアドレス / network address")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="mqtt | http")] = "mqtt",
    mqtt_client_id: Annotated[str | None, typer.Option("--mqtt-client-id")] = None,
    firmware: Annotated[str | None, typer.Option("--firmware", help="ファームウェア版 / firmware version")] = None,
    component: Annotated[
        str | None, typer.Option("--component", help="都市モデルの構成要素 / city model component")
    ] = None,
    management_user: Annotated[str | None, typer.Option("--management-user", help="管理用ログイン名")] = None,
    management_password_stdin: Annotated[
        bool, typer.Option("--management-password-stdin", help="管理用パスワードを標準入力から (保存しません)")
    ] = False,
    management_endpoint: Annotated[
        list[str] | None,
        typer.Option("--management-endpoint", help="監査で試す管理口 / probe target, e.g. telnet://10.1.2.3:23"),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """機器を登録 / register a device with its key (a management password is checked, never stored)."""
    point = None
    if location:
        try:
            longitude, latitude = (float(part) for part in location.split(","))
        except ValueError:
            raise InputError.single("--location", "give longitude,latitude / 経度,緯度 で指定してください") from None
        point = (longitude, latitude)
    password = sys.stdin.readline().rstrip("\n") if management_password_stdin else None
    key, pem = _key(public_key, hmac_secret_file, generate_key)
    new = NewDevice(
        id=device_id,
        model=model,
        owner=owner,
        key=key,
        vendor=vendor,
        component=component,
        name=name,
        location=point,
        address=address,
        protocol=protocol,
        mqtt_client_id=mqtt_client_id,
        firmware=firmware,
        management_username=management_user,
        management_password=password,
        management_endpoints=tuple(management_endpoint or ()),
    )
    with _registry(config, data_dir) as registry:
        record = registry.add(new, CLI_ACTOR)
    _write_private_key(generate_key, pem)
    _print(record)


@device_app.command("import")
def device_import(
    file: Annotated[Path, typer.Argument(help="CSV (docs/gateway.md の列) / CSV with the documented columns")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """CSV から一括登録 (全件か0件) / register every device of a CSV file, all or none."""
    from machimori.gateway.inventory import read_inventory

    with _registry(config, data_dir) as registry:
        devices = read_inventory(file, registry.validate)
        records = registry.add_many(devices, CLI_ACTOR)
    out.print(f"{len(records)} 台を登録 / devices registered: {len(records)}")


@device_app.command("list")
def device_list(
    status: Annotated[DeviceStatus | None, typer.Option("--status")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """登録済みの機器 / registered devices."""
    with _registry(config, data_dir) as registry:
        records = registry.all(status)
    if as_json:
        out.print(json.dumps([record.public() for record in records], ensure_ascii=False))
        return
    table = Table("id", "model", "owner", "status", "firmware", "last seen")
    for record in records:
        seen = record.last_seen_at.isoformat(timespec="seconds") if record.last_seen_at else "-"
        table.add_row(record.id, record.model, record.owner, record.status.value, record.firmware or "-", seen)
    out.print(table)


@device_app.command("show")
def device_show(device_id: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """機器の詳細 (鍵の材料は出しません) / one device (never its key material)."""
    with _registry(config, data_dir) as registry:
        _print(registry.require(device_id))


@device_app.command("rotate-key")
def device_rotate_key(
    device_id: str,
    public_key: KeyOption = None,
    hmac_secret_file: SecretOption = None,
    generate_key: GenerateOption = None,
    expires: Annotated[str | None, typer.Option("--expires", help="鍵の期限 (RFC 3339) / key expiry")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """鍵を更新 / give a device a new key (its counters go on: the device keeps counting up)."""
    expires_at = None
    if expires:
        try:
            expires_at = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
        except ValueError:
            raise InputError.single("--expires", f"{expires!r} is not a date / 日付ではありません") from None
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=dt.UTC)
    key, pem = _key(public_key, hmac_secret_file, generate_key)
    with _registry(config, data_dir) as registry:
        record = registry.rotate_key(device_id, key, CLI_ACTOR, expires_at)
    _write_private_key(generate_key, pem)
    _print(record)


@device_app.command("quarantine")
def device_quarantine(
    device_id: str, reason: ReasonOption, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """隔離 (以後のデータを拒否) / quarantine: refuse everything the device sends."""
    with _registry(config, data_dir) as registry:
        _print(registry.quarantine(device_id, reason, CLI_ACTOR))


@device_app.command("release")
def device_release(
    device_id: str, reason: ReasonOption, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """隔離を解除 (特権操作、監査ログに記録) / release from quarantine (privileged, audit-logged)."""
    with _registry(config, data_dir) as registry:
        _print(registry.release(device_id, reason, CLI_ACTOR))


@device_app.command("retire")
def device_retire(
    device_id: str, reason: ReasonOption, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """廃止 / retire a device for good."""
    with _registry(config, data_dir) as registry:
        _print(registry.retire(device_id, reason, CLI_ACTOR))


@device_app.command("audit")
def device_audit(
    active: Annotated[
        bool, typer.Option("--probe", help="初期パスワードを実際に試す (登録済みアドレスのみ) / try default logins")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="接続せずに対象だけ示す / list targets, connect to none")
    ] = False,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, max=50, help="1秒あたりの試行 / login attempts a second")
    ] = 2.0,
    quarantine: Annotated[
        bool,
        typer.Option("--quarantine", help="初期パスワードが通った機器を隔離 / quarantine devices that accepted one"),
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """機器の監査 (共有鍵・クライアントID重複・鍵の期限・古いファームウェア・初期パスワード) / device audits."""
    import asyncio

    from machimori.gateway.audits import audit_devices, report_findings
    from machimori.gateway.probing import probe_devices

    with _registry(config, data_dir) as registry:
        findings = audit_devices(registry)
        if active or dry_run:
            report = asyncio.run(probe_devices(registry, dry_run=dry_run, rate_per_second=rate))
            for outcome in report.outcomes:
                err.print(
                    f"probe {outcome.device_id} {outcome.protocol}://{outcome.host}:{outcome.port} {outcome.outcome}"
                )
            findings.extend(report.findings)
            if quarantine:
                for device in sorted({finding.device_id for finding in report.findings}):
                    if registry.require(device).status == DeviceStatus.active:
                        registry.quarantine(device, "device audit: a default login was accepted", "device-audit")
        report_findings(registry.events, registry, findings)
    if as_json:
        out.print(json.dumps([finding.public() for finding in findings], ensure_ascii=False))
    else:
        table = Table("severity", "device", "check", "finding")
        for finding in findings:
            table.add_row(finding.severity.name.lower(), finding.device_id, finding.check, finding.message)
        out.print(table)
        out.print(f"{len(findings)} 件の指摘 / findings: {len(findings)}")
    if findings:
        raise typer.Exit(1)


def simulate(
    devices: Annotated[int, typer.Option("--devices", min=1, max=100000, help="機器の台数 / fleet size")] = 10,
    rate: Annotated[float, typer.Option("--rate", min=0.1, help="1秒あたりの送信数 / messages a second")] = 20.0,
    messages: Annotated[int | None, typer.Option("--messages", min=1, help="送信総数 / messages in all")] = None,
    url: Annotated[str, typer.Option("--url", help="machimori の URL")] = "http://127.0.0.1:8750",
    token: Annotated[
        str | None, typer.Option("--token", envvar="MACHIMORI_ADMIN_TOKEN", help="管理者トークン / admin token")
    ] = None,
    transport: Annotated[str, typer.Option("--transport", help="http | mqtt")] = "http",
    mqtt_url: Annotated[str, typer.Option("--mqtt-url")] = "mqtt://127.0.0.1:1883",
    mqtt_topic: Annotated[str, typer.Option("--mqtt-topic")] = "machimori/telemetry",
    model: Annotated[str, typer.Option("--model", help="機器モデル / device model")] = "air-quality-sensor",
    owner: Annotated[str, typer.Option("--owner")] = "minato-city",
    vendor: Annotated[str, typer.Option("--vendor")] = "soyokaze-kankyo",
    prefix: Annotated[str, typer.Option("--prefix", help="機器 ID の接頭辞 / device id prefix")] = "sim",
    honest: Annotated[bool, typer.Option("--honest", help="不正な機器を含めない / no misbehaving devices")] = False,
) -> None:
    """模擬センサー群を登録して送信 (偽造鍵・再送・範囲外の機器を含む) / run a simulated sensor fleet."""
    from urllib.parse import urlsplit

    import httpx
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from machimori.gateway.models import load_models
    from machimori.gateway.simulate import provision, run_http, run_mqtt

    if token is None:
        raise InputError.single("--token", "an admin token is needed to register devices / 管理者トークンが必要です")
    if transport not in ("http", "mqtt"):
        raise InputError.single("--transport", "http or mqtt / http か mqtt")
    chosen = load_models().get(model)
    if chosen is None:
        raise InputError.single("--model", f"unknown built-in device model {model!r} / 機器モデルがありません")
    total = messages or devices * 10
    admin = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            fleet = provision(
                http,
                admin,
                chosen,
                devices,
                owner=owner,
                vendor=vendor,
                prefix=prefix,
                protocol="mqtt" if transport == "mqtt" else "http",
                misbehaving=not honest,
            )
            err.print(f"{len(fleet)} 台を登録 / devices provisioned: {len(fleet)}")
            if transport == "http":
                tally = run_http(http, fleet, total, rate)
            else:
                broker = urlsplit(mqtt_url)
                client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
                client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
                client.loop_start()
                try:
                    tally = run_mqtt(client, fleet, total, rate, topic=mqtt_topic)
                finally:
                    client.disconnect()
                    client.loop_stop()
    except httpx.HTTPStatusError as error:
        detail = f"the server refused: {error.response.status_code} {error.response.text[:200]}"
        raise InputError.single(url, detail) from None
    except (httpx.TransportError, OSError) as error:
        raise InputError.single(url, f"cannot reach: {error} / 接続できません") from None
    table = Table("outcome", "messages")
    for outcome, count in tally.most_common():
        table.add_row(outcome, str(count))
    out.print(table)
