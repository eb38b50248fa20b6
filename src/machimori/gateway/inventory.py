"""Device inventories from CSV (a vendor's delivery list, a municipality's asset register): every row checked,
every problem reported at its file:line, nothing registered unless all rows are good."""

from __future__ import annotations

import base64
import binascii
import collections
import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from machimori.diagnostics import InputError, Problem, read_user_file
from machimori.gateway.registry import DeviceKey, NewDevice, RegistryError

COLUMNS = (
    "id",
    "model",
    "owner",
    "vendor",
    "component",
    "name",
    "longitude",
    "latitude",
    "address",
    "protocol",
    "mqtt_client_id",
    "firmware",
    "public_key",
    "hmac_secret",
    "key_expires",
    "management_username",
    "management_password",
    "management_endpoints",
)
REQUIRED = ("id", "model", "owner")


def read_inventory(path: Path, check: Callable[[NewDevice], None] | None = None) -> list[NewDevice]:
    """The devices a CSV file lists (header row with COLUMNS' names; unknown columns are an error); `check`
    (the registry's, say) judges each row too, so its refusals are reported at the row's line."""
    raw = read_user_file(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = bytes(error.object[: error.start]).count(b"\n") + 1  # object: the bytes after any BOM
        raise InputError.single(str(path), "not UTF-8 / UTF-8 ではありません", line) from None
    # strict: a stray or unclosed quote is an error at its line, not a silently merged field
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
    except csv.Error as error:
        raise InputError.single(str(path), f"not CSV: {error} / CSV ではありません", 1, 1) from None
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    twice = sorted(name for name, count in collections.Counter(header).items() if count > 1)
    if unknown or missing or twice:
        found = (("unknown columns", unknown), ("missing columns", missing), ("columns given twice", twice))
        detail = "; ".join(f"{what} {names}" for what, names in found if names)
        raise InputError.single(str(path), f"{detail}; columns: {', '.join(COLUMNS)}", 1, 1)
    devices: list[NewDevice] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    while True:
        line = reader.line_num + 1  # where the row starts: a quoted PEM key makes a row several lines long
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # the rest of the file cannot be split into rows reliably
            problems.append(Problem(str(path), reader.line_num, 1, f"not CSV: {error} / CSV ではありません"))
            break
        if not fields:  # a blank line
            continue
        try:
            if len(fields) > len(header):
                raise RegistryError(f"more fields than columns ({len(header)}) / 列より多い項目があります")
            device = _device({name: value.strip() for name, value in zip(header, fields, strict=False)})
            if check is not None:
                check(device)
        except (RegistryError, ValueError) as error:
            problems.append(Problem(str(path), line, 1, str(error)))
            continue
        if device.id in first_line:
            message = f"device {device.id} is listed twice (first at line {first_line[device.id]}) / 重複しています"
            problems.append(Problem(str(path), line, 1, message))
            continue
        first_line[device.id] = line
        devices.append(device)
    if problems:
        raise InputError(problems)
    return devices


def parse_public_key(text: str) -> DeviceKey:
    """An Ed25519 public key given as PEM, 64 hex digits or base64(url) of its 32 bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm):  # an unknown key type is not a ValueError: it escaped before
            raise RegistryError("not a PEM public key / PEM 公開鍵ではありません") from None
        if not isinstance(key, Ed25519PublicKey):
            raise RegistryError("the PEM key is not Ed25519 / Ed25519 の鍵ではありません")
        return DeviceKey.ed25519(key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    return DeviceKey.ed25519(decode_bytes(text))


def decode_bytes(text: str) -> bytes:
    """Bytes given as hex (64 digits for 32 bytes) or base64(url)."""
    text = text.strip()
    try:
        if len(text) % 2 == 0 and all(ch in "0123456789abcdefABCDEF" for ch in text) and len(text) >= 64:
            return bytes.fromhex(text)
        # validate: without it, characters outside the alphabet (spaces, '!') are dropped without a word, and a
        # passphrase or a typo would be registered as some other secret
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        raise RegistryError("not hex or base64 / 16進数でも base64 でもありません") from None


def _device(row: dict[str, str]) -> NewDevice:
    for name in REQUIRED:
        if not row.get(name):
            raise RegistryError(f"{name} is empty / {name} が空です")
    if bool(row.get("public_key")) == bool(row.get("hmac_secret")):
        raise RegistryError("give exactly one of public_key and hmac_secret / どちらか一方を指定してください")
    key = (
        parse_public_key(row["public_key"])
        if row.get("public_key")
        else DeviceKey.hmac_secret(decode_bytes(row["hmac_secret"]))
    )
    location = None
    if row.get("longitude") or row.get("latitude"):
        location = (_number(row.get("longitude", ""), "longitude"), _number(row.get("latitude", ""), "latitude"))
        if not (-180 <= location[0] <= 180 and -90 <= location[1] <= 90):  # NaN fails both comparisons too
            raise RegistryError("longitude -180 to 180, latitude -90 to 90 (degrees) / 位置が範囲外です")
    expires = None
    if row.get("key_expires"):
        try:
            expires = dt.datetime.fromisoformat(row["key_expires"].replace("Z", "+00:00"))
        except ValueError:
            raise RegistryError(f"key_expires {row['key_expires']!r} is not a date / 日付ではありません") from None
        expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)
    return NewDevice(
        id=row["id"],
        model=row["model"],
        owner=row["owner"],
        key=key,
        vendor=row.get("vendor") or None,
        component=row.get("component") or None,
        name=row.get("name") or None,
        location=location,
        address=row.get("address") or None,
        protocol=row.get("protocol") or "mqtt",
        mqtt_client_id=row.get("mqtt_client_id") or None,
        firmware=row.get("firmware") or None,
        key_expires_at=expires,
        management_username=row.get("management_username") or None,
        management_password=row.get("management_password") or None,
        management_endpoints=tuple(row.get("management_endpoints", "").split()),
    )


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise RegistryError(f"{name} {text!r} is not a number / 数値ではありません") from None
