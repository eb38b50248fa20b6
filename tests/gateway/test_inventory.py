"""CSV device inventories: good rows become NewDevice values; every bad row is reported at its own line."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from machimori.diagnostics import InputError
from machimori.gateway.inventory import COLUMNS, decode_bytes, parse_public_key, read_inventory
from machimori.gateway.registry import DeviceKey, NewDevice, RegistryError

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32) for n in range(1, 5)]
RAW = [key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) for key in KEYS]
PEM = KEYS[0].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
SECRET = bytes(range(100, 140))  # 40 bytes
HEADER = ["id", "model", "owner", "public_key", "hmac_secret"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "devices.csv"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def problems(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(InputError) as error:
        read_inventory(path)
    assert {p.file for p in error.value.problems} == {str(path)}
    return [(p.line, p.message) for p in error.value.problems]


def good(id: str, key: str = "", secret: str = "") -> list[str]:
    return [id, "air-quality-sensor", "city-environment", key, secret]


# --- good files ----------------------------------------------------------------------------------------------------
def test_every_key_encoding_and_every_column(tmp_path: Path) -> None:
    header = list(COLUMNS)
    row = dict.fromkeys(COLUMNS, "")
    rows = []
    for id, key, secret in [
        ("aq-pem", PEM, ""),
        ("aq-hex", RAW[1].hex(), ""),
        ("aq-HEX", RAW[1].hex().upper(), ""),
        ("aq-b64url", b64url(RAW[2]), ""),
        ("aq-b64", base64.b64encode(RAW[3]).decode(), ""),
        ("tiny-hmac", "", b64url(SECRET)),
        ("tiny-hmac-hex", "", SECRET.hex()),
    ]:
        rows.append(
            [
                {
                    **row,
                    "id": id,
                    "model": "air-quality-sensor",
                    "owner": "city",
                    "public_key": key,
                    "hmac_secret": secret,
                }[c]
                for c in header
            ]
        )
    full = dict(
        row,
        id="aq-full",
        model="noise-sensor",
        owner="city-environment",
        vendor="acme-sensors",
        component="sensor-net",
        name="Noise at Shibuya crossing / 渋谷交差点",
        longitude="139.7005",
        latitude="35.6595",
        address="東京都渋谷区道玄坂2丁目, 1F",
        protocol="http",
        mqtt_client_id="noise-77",
        firmware="2.10.1",
        public_key=b64url(RAW[0]),
        key_expires="2027-03-31T00:00:00Z",
        management_username="admin",
        management_password="s3cr3t, with comma",
        management_endpoints="telnet://10.1.2.3:23  http://10.1.2.3/  ssh://10.1.2.3:22",
    )
    rows.append([full[c] for c in header])
    devices = read_inventory(write(tmp_path, csv_text(header, rows)))
    by_id = {device.id: device for device in devices}
    assert [device.id for device in devices] == [
        "aq-pem",
        "aq-hex",
        "aq-HEX",
        "aq-b64url",
        "aq-b64",
        "tiny-hmac",
        "tiny-hmac-hex",
        "aq-full",
    ]
    assert by_id["aq-pem"].key == DeviceKey.ed25519(RAW[0])
    assert by_id["aq-hex"].key == by_id["aq-HEX"].key == DeviceKey.ed25519(RAW[1])
    assert by_id["aq-b64url"].key == DeviceKey.ed25519(RAW[2])
    assert by_id["aq-b64"].key == DeviceKey.ed25519(RAW[3])
    assert by_id["tiny-hmac"].key == by_id["tiny-hmac-hex"].key == DeviceKey.hmac_secret(SECRET)
    assert by_id["aq-pem"] == NewDevice(
        id="aq-pem", model="air-quality-sensor", owner="city", key=DeviceKey.ed25519(RAW[0])
    )
    assert by_id["aq-full"] == NewDevice(
        id="aq-full",
        model="noise-sensor",
        owner="city-environment",
        key=DeviceKey.ed25519(RAW[0]),
        vendor="acme-sensors",
        component="sensor-net",
        name="Noise at Shibuya crossing / 渋谷交差点",
        location=(139.7005, 35.6595),
        address="東京都渋谷区道玄坂2丁目, 1F",
        protocol="http",
        mqtt_client_id="noise-77",
        firmware="2.10.1",
        key_expires_at=dt.datetime(2027, 3, 31, tzinfo=dt.UTC),
        management_username="admin",
        management_password="s3cr3t, with comma",
        management_endpoints=("telnet://10.1.2.3:23", "http://10.1.2.3/", "ssh://10.1.2.3:22"),
    )


def test_only_the_required_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        csv_text(["owner", "id", "public_key", "model"], [["city", "aq-1", b64url(RAW[0]), "air-quality-sensor"]]),
    )
    [device] = read_inventory(path)
    assert (device.id, device.model, device.owner, device.protocol) == ("aq-1", "air-quality-sensor", "city", "mqtt")
    assert device.location is None and device.key_expires_at is None and device.management_endpoints == ()


def test_byte_order_mark_and_crlf_are_accepted(tmp_path: Path) -> None:
    text = csv_text(HEADER, [good("aq-1", b64url(RAW[0])), good("aq-2", RAW[1].hex())]).replace("\n", "\r\n")
    path = write(tmp_path, "\ufeff".encode() + text.encode())
    assert [d.id for d in read_inventory(path)] == ["aq-1", "aq-2"]


def test_values_are_trimmed_and_blank_lines_skipped(tmp_path: Path) -> None:
    text = "id,model,owner,public_key\n\n  aq-1 , air-quality-sensor ,city,  " + b64url(RAW[0]) + "  \n\n"
    [device] = read_inventory(write(tmp_path, text))
    assert (device.id, device.model, device.key) == ("aq-1", "air-quality-sensor", DeviceKey.ed25519(RAW[0]))


def test_header_only_is_an_empty_inventory(tmp_path: Path) -> None:
    assert read_inventory(write(tmp_path, "id,model,owner,public_key\n")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-01", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),  # no zone: UTC
        ("2027-01-01T09:00:00", dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC)),
        ("2027-01-01T09:00:00Z", dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC)),
        ("2027-01-01T09:00:00+09:00", dt.datetime(2027, 1, 1, 0, tzinfo=dt.UTC)),
    ],
)
def test_key_expiry(tmp_path: Path, text: str, expected: dt.datetime) -> None:
    path = write(tmp_path, csv_text([*HEADER, "key_expires"], [[*good("aq-1", b64url(RAW[0])), text]]))
    [device] = read_inventory(path)
    assert device.key_expires_at == expected
    assert device.key_expires_at is not None and device.key_expires_at.utcoffset() is not None


def test_management_endpoints_split_on_any_whitespace(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        csv_text(
            [*HEADER, "management_endpoints"],
            [[*good("aq-1", b64url(RAW[0])), "  telnet://10.0.0.1:23\t ssh://10.0.0.1  "]],
        ),
    )
    assert read_inventory(path)[0].management_endpoints == ("telnet://10.0.0.1:23", "ssh://10.0.0.1")


# --- header problems: line 1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "words"),
    [
        (["id", "model", "owner", "public_key", "colour"], ["unknown", "colour"]),
        (["id", "model", "owner", "Public_Key"], ["unknown", "Public_Key"]),
        (["id", "model", "owner", " public_key"], ["unknown"]),
        (["id", "model", "public_key"], ["missing", "owner"]),
        (["model", "owner", "public_key"], ["missing", "id"]),
        (["id", "model", "owner", "public_key", "public_key"], ["twice", "public_key"]),
    ],
)
def test_header_problems_are_at_line_1(tmp_path: Path, header: list[str], words: list[str]) -> None:
    path = write(
        tmp_path,
        csv_text(header, [["aq-1", "air-quality-sensor", "city", b64url(RAW[0]), b64url(RAW[1])][: len(header)]]),
    )
    [(line, message)] = problems(path)
    assert line == 1
    for word in words:
        assert word in message


def test_empty_file_is_missing_every_column(tmp_path: Path) -> None:
    [(line, message)] = problems(write(tmp_path, ""))
    assert line == 1 and "missing" in message and "id" in message


# --- row problems: each at its own line -------------------------------------------------------------------------
def test_several_bad_rows_each_at_its_line(tmp_path: Path) -> None:
    rows = [
        good("aq-1", b64url(RAW[0])),  # line 2: fine
        good("aq-2"),  # 3: no key
        good("aq-3", b64url(RAW[0]), b64url(SECRET)),  # 4: both keys
        good("aq-4", PEM),  # 5-8: fine, a PEM key (with its final newline) spans four lines
        good("aq-5", "not-a-key"),  # 9
        ["", "air-quality-sensor", "city", b64url(RAW[0]), ""],  # 10: no id
        good("aq-7", "", b64url(SECRET[:16])),  # 11: secret too short
        good("aq-8", b64url(RAW[0][:31])),  # 12: 31 bytes
        good("aq-9", b64url(RAW[1])),  # 13: fine
    ]
    text = csv_text(HEADER, rows)
    assert text.count("\n") == 13 and PEM.count("\n") == 3
    found = problems(write(tmp_path, text))
    assert [line for line, _ in found] == [3, 4, 9, 10, 11, 12]
    messages = dict(found)
    assert "exactly one of public_key and hmac_secret" in messages[3]
    assert "exactly one of public_key and hmac_secret" in messages[4]
    assert "Ed25519" in messages[9] or "base64" in messages[9]
    assert "id is empty" in messages[10]
    assert "32 bytes" in messages[11]
    assert "Ed25519" in messages[12]


def test_a_bad_pem_row_is_reported_at_its_first_line(tmp_path: Path) -> None:
    broken = PEM.replace(PEM.splitlines()[1], "AAAA" * 11)
    text = csv_text(HEADER, [good("aq-1", b64url(RAW[0])), good("aq-2", broken), good("aq-3", b64url(RAW[1]), "x")])
    assert problems(write(tmp_path, text)) == [
        (3, "not a PEM public key / PEM 公開鍵ではありません"),
        (7, "give exactly one of public_key and hmac_secret / どちらか一方を指定してください"),
    ]


def test_duplicate_ids_are_reported_at_each_repeat(tmp_path: Path) -> None:
    rows = [
        good("aq-1", b64url(RAW[0])),
        good("aq-2", b64url(RAW[1])),
        good("aq-1", b64url(RAW[2])),
        good("aq-1", b64url(RAW[3])),
    ]
    found = problems(write(tmp_path, csv_text(HEADER, rows)))
    assert [line for line, _ in found] == [4, 5]
    assert all("aq-1" in message and "line 2" in message for _, message in found)


def test_duplicates_are_reported_together_with_other_problems(tmp_path: Path) -> None:
    rows = [good("aq-1", b64url(RAW[0])), good("aq-2"), good("aq-1", b64url(RAW[1]))]
    assert [line for line, _ in problems(write(tmp_path, csv_text(HEADER, rows)))] == [3, 4]


@pytest.mark.parametrize(
    ("longitude", "latitude", "word"),
    [
        ("east", "35.6", "longitude"),
        ("139.7", "", "latitude"),  # half a location
        ("", "35.6", "longitude"),
        ("139,7", "35.6", "longitude"),
        ("nan", "35.6", "180"),
        ("139.7", "inf", "180"),
        ("1e999", "35.6", "180"),
        ("180.5", "35.6", "180"),
        ("139.7", "-91", "180"),
        ("35.6", "139.7", "180"),  # swapped: latitude cannot be 139.7
    ],
)
def test_bad_location(tmp_path: Path, longitude: str, latitude: str, word: str) -> None:
    header = [*HEADER, "longitude", "latitude"]
    path = write(
        tmp_path,
        csv_text(
            header, [[*good("aq-0", b64url(RAW[1])), "139", "35"], [*good("aq-1", b64url(RAW[0])), longitude, latitude]]
        ),
    )
    [(line, message)] = problems(path)
    assert line == 3 and word in message


@pytest.mark.parametrize("expiry", ["tomorrow", "2027-13-01", "31/03/2027", "2027-02-30T00:00:00Z", "1743379200"])
def test_bad_expiry(tmp_path: Path, expiry: str) -> None:
    path = write(tmp_path, csv_text([*HEADER, "key_expires"], [[*good("aq-1", b64url(RAW[0])), expiry]]))
    [(line, message)] = problems(path)
    assert line == 2 and "key_expires" in message


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("", ""),
        (b64url(RAW[0]), b64url(SECRET)),
        ("   ", ""),
    ],
)
def test_both_or_neither_key(tmp_path: Path, key: str, secret: str) -> None:
    [(line, message)] = problems(write(tmp_path, csv_text(HEADER, [good("aq-1", key, secret)])))
    assert line == 2 and "exactly one" in message


def test_more_fields_than_columns_is_an_error(tmp_path: Path) -> None:
    """An unquoted comma in the last column would otherwise drop the rest of the value without a word."""
    text = "id,model,owner,public_key,address\naq-1,air-quality-sensor,city," + b64url(RAW[0]) + ",Chiyoda, Tokyo\n"
    [(line, message)] = problems(write(tmp_path, text))
    assert line == 2 and "more fields" in message


def test_fewer_fields_than_columns_leaves_them_empty(tmp_path: Path) -> None:
    text = "id,model,owner,public_key,address,firmware\naq-1,air-quality-sensor,city," + b64url(RAW[0]) + "\n"
    [device] = read_inventory(write(tmp_path, text))
    assert device.address is None and device.firmware is None


def test_not_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    text = csv_text(HEADER, [good("aq-1", b64url(RAW[0])), good("aq-2", b64url(RAW[1]))])
    raw = text.encode().replace(b"aq-2", b"aq-\xff2")
    [(line, message)] = problems(write(tmp_path, raw))
    assert line == 3 and "UTF-8" in message
    [(line, _)] = problems(write(tmp_path, "\ufeff".encode() + raw))
    assert line == 3
    [(line, _)] = problems(write(tmp_path, text.encode("utf-16")))
    assert line == 1


def test_shift_jis_is_not_utf8(tmp_path: Path) -> None:
    text = csv_text([*HEADER, "name"], [[*good("aq-1", b64url(RAW[0])), "渋谷区のセンサー"]])
    [(_, message)] = problems(write(tmp_path, text.encode("shift_jis")))
    assert "UTF-8" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('id,model,owner,public_key\naq-1,air-quality-sensor,"city,KEY\naq-2,m,o,k\n', 3),  # quote never closed
        ('id,model,owner,public_key\n"aq-1"x,m,o,k\n', 2),  # text after a closing quote
        ('"id,model,owner,public_key\n', 1),
    ],
)
def test_broken_quoting_is_an_input_error_at_its_line(tmp_path: Path, text: str, line: int) -> None:
    found = problems(write(tmp_path, text))
    assert found[0][0] == line
    assert "CSV" in found[0][1] or "missing" in found[0][1]


def test_huge_field_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    text = csv_text([*HEADER, "address"], [[*good("aq-1", b64url(RAW[0])), "x" * 200000]])
    [(line, message)] = problems(write(tmp_path, text))
    assert line == 2 and "CSV" in message


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    [(_, message)] = problems(tmp_path / "absent.csv")
    assert "not found" in message


def test_formula_and_injection_text_is_kept_as_text(tmp_path: Path) -> None:
    """The importer stores what the file says; the registry validates ids, and nothing here is evaluated."""
    rows = [[*good("aq-1", b64url(RAW[0])), '=HYPERLINK("http://evil")', "'; DROP TABLE devices;--"]]
    [device] = read_inventory(write(tmp_path, csv_text([*HEADER, "name", "address"], rows)))
    assert device.name == '=HYPERLINK("http://evil")'
    assert device.address == "'; DROP TABLE devices;--"


# --- keys ------------------------------------------------------------------------------------------------------------
def test_parse_public_key_formats() -> None:
    assert (
        parse_public_key(PEM)
        == parse_public_key(RAW[0].hex())
        == parse_public_key(b64url(RAW[0]))
        == DeviceKey.ed25519(RAW[0])
    )
    assert parse_public_key("\n  " + PEM + "\n") == DeviceKey.ed25519(RAW[0])
    assert parse_public_key(base64.b64encode(RAW[0]).decode()) == DeviceKey.ed25519(RAW[0])


def test_pem_of_another_key_type_is_refused() -> None:
    x25519 = X25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    pem = x25519.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(RegistryError, match="not Ed25519"):
        parse_public_key(pem)


def test_pem_of_an_unknown_algorithm_is_a_registry_error() -> None:
    """cryptography raises UnsupportedAlgorithm (not a ValueError) for an unknown OID: it used to escape."""
    oid = bytes([0x06, 0x03, 0x2A, 0x03, 0x04])  # 1.2.3.4
    algorithm = bytes([0x30, len(oid)]) + oid
    bits = bytes([0x03, 33, 0]) + RAW[0]
    spki = bytes([0x30, len(algorithm) + len(bits)]) + algorithm + bits
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(spki).decode() + "\n-----END PUBLIC KEY-----\n"
    with pytest.raises(RegistryError):
        parse_public_key(pem)


@pytest.mark.parametrize("text", ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "-----BEGIN garbage"])
def test_broken_pem_is_a_registry_error(text: str) -> None:
    with pytest.raises(RegistryError):
        parse_public_key(text)


@pytest.mark.parametrize(
    "text",
    [
        "correct horse battery staple correct horse battery staple",  # a passphrase, not base64
        "!!!!",
        "YWJj ZGVm",
        "YWJj\nZGVm",
        "ab==cd",  # data after the padding
        "abcde",  # a length base64 cannot have
        "ä" * 44,
    ],
)
def test_decode_bytes_refuses_what_is_not_hex_or_base64(text: str) -> None:
    with pytest.raises(RegistryError, match="not hex or base64"):
        decode_bytes(text)


def test_decode_bytes_accepts_hex_base64_and_base64url() -> None:
    data = bytes(range(250, 256)) + bytes(range(26))  # 32 bytes with +/ (or -_) in base64
    assert decode_bytes(data.hex()) == data
    assert decode_bytes(base64.b64encode(data).decode()) == data
    assert decode_bytes(base64.urlsafe_b64encode(data).decode()) == data
    assert decode_bytes(b64url(data)) == data
    assert decode_bytes("  " + b64url(data) + "\n") == data
