"""Device telemetry envelopes: COSE_Sign1 with EdDSA (Ed25519) or COSE_Mac0 with HMAC 256/256 (RFC 9052).

A device puts its id in the protected header (`kid`), so the signature covers which device speaks; the
payload is a CBOR map of a monotonic counter (`c`), the reading's time in epoch milliseconds (`t`) and
its values (`v`). `open_envelope` only takes the message apart — nothing in it is trusted until
`verified_reading` has checked the signature with the device's registered key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGN1_TAG = 18
MAC0_TAG = 17
ALG_EDDSA = -8
ALG_HMAC_256 = 5
HEADER_ALG = 1
HEADER_KID = 4
MAX_ENVELOPE_BYTES = 4096
MAX_VALUES = 32
MAX_TEXT = 256
MAX_COUNTER = 2**62
# \Z, not $: "$" also matches before a final newline, which would let "dev-1\n" through as a device id.
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
VALUE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MILLISECOND = dt.timedelta(milliseconds=1)

Value = float | int | str | bool
Kind = Literal["sign1", "mac0"]


class EnvelopeRejected(ValueError):
    """A message the gateway refuses; `reason` is a short code (see docs/gateway.md)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Reading:
    """What a device reports: its counter, when it measured, and the values."""

    counter: int
    time: dt.datetime
    values: dict[str, Value]


@dataclass(frozen=True)
class Envelope:
    """A message taken apart but not yet verified: who it claims to come from, and what was signed."""

    kind: Kind
    device_id: str
    protected: bytes
    payload: bytes
    tag: bytes
    raw: bytes

    def verified_reading(self, key: Ed25519PublicKey | bytes) -> Reading:
        """The reading, once the signature (or MAC) checks out under the device's key; EnvelopeRejected if not."""
        if self.kind == "sign1":
            if not isinstance(key, Ed25519PublicKey):
                raise EnvelopeRejected("wrong-algorithm", "the device is registered with an HMAC secret, not Ed25519")
            try:
                key.verify(self.tag, _to_be_signed(self.protected, self.payload))
            except InvalidSignature:
                raise EnvelopeRejected("bad-signature", "the signature does not verify") from None
        else:
            if not isinstance(key, bytes):
                raise EnvelopeRejected("wrong-algorithm", "the device is registered with Ed25519, not an HMAC secret")
            expected = hmac.new(key, _to_be_maced(self.protected, self.payload), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, self.tag):
                raise EnvelopeRejected("bad-signature", "the MAC does not verify")
        return _reading(self.payload)


def open_envelope(raw: bytes) -> Envelope:
    """Take a COSE_Sign1 or COSE_Mac0 message apart (size, structure, algorithm, kid); nothing verified yet."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeRejected("oversized", f"envelope over {MAX_ENVELOPE_BYTES} bytes")
    try:
        message = _cbor_item(raw)
    except Exception:  # cbor2 raises several kinds on truncated or malformed input
        raise EnvelopeRejected("malformed", "not a CBOR message (truncated, malformed or followed by more)") from None
    if not isinstance(message, cbor2.CBORTag) or message.tag not in (SIGN1_TAG, MAC0_TAG):
        raise EnvelopeRejected("malformed", "not a tagged COSE_Sign1 (18) or COSE_Mac0 (17) message")
    parts = message.value
    if not (isinstance(parts, list | tuple) and len(parts) == 4 and isinstance(parts[0], bytes)):
        raise EnvelopeRejected("malformed", "a COSE message is [protected, unprotected, payload, tag]")
    protected, unprotected, payload, tag = parts
    if not (isinstance(payload, bytes) and isinstance(tag, bytes)):
        raise EnvelopeRejected("malformed", "payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):  # not signed, and not read, but a map all the same (RFC 9052 §3)
        raise EnvelopeRejected("malformed", "the unprotected header must be a map")
    kind: Kind = "sign1" if message.tag == SIGN1_TAG else "mac0"
    header = _protected_header(protected)
    expected_alg = ALG_EDDSA if kind == "sign1" else ALG_HMAC_256
    alg = header.get(HEADER_ALG)
    if type(alg) is not int or alg != expected_alg:
        raise EnvelopeRejected("wrong-algorithm", f"alg must be {expected_alg} for a {kind} message")
    return Envelope(kind, _device_id(header.get(HEADER_KID)), protected, payload, tag, raw)


def sign_reading(device_id: str, reading: Reading, key: Ed25519PrivateKey) -> bytes:
    """A COSE_Sign1 message of the reading, signed with the device's Ed25519 key."""
    protected = cbor2.dumps({HEADER_ALG: ALG_EDDSA, HEADER_KID: device_id.encode()})
    payload = _payload(reading)
    signature = key.sign(_to_be_signed(protected, payload))
    return bytes(cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [protected, {}, payload, signature])))


def mac_reading(device_id: str, reading: Reading, secret: bytes) -> bytes:
    """A COSE_Mac0 message of the reading, authenticated with the device's HMAC secret."""
    protected = cbor2.dumps({HEADER_ALG: ALG_HMAC_256, HEADER_KID: device_id.encode()})
    payload = _payload(reading)
    tag = hmac.new(secret, _to_be_maced(protected, payload), hashlib.sha256).digest()
    return bytes(cbor2.dumps(cbor2.CBORTag(MAC0_TAG, [protected, {}, payload, tag])))


def _to_be_signed(protected: bytes, payload: bytes) -> bytes:
    return bytes(cbor2.dumps(["Signature1", protected, b"", payload]))


def _to_be_maced(protected: bytes, payload: bytes) -> bytes:
    return bytes(cbor2.dumps(["MAC0", protected, b"", payload]))


def _payload(reading: Reading) -> bytes:
    # whole milliseconds in integers: int(timestamp() * 1000) loses a millisecond to float rounding at times
    time = reading.time if reading.time.tzinfo else reading.time.astimezone()  # naive: local time, as timestamp()
    millis = (time - EPOCH) // MILLISECOND
    return bytes(cbor2.dumps({"c": reading.counter, "t": millis, "v": reading.values}))


def _cbor_item(data: bytes) -> Any:
    """Exactly one CBOR data item: a map with a key twice (RFC 9052 §3 calls that malformed) or bytes after
    the item are refused, so that no other COSE implementation can read the message differently."""
    stream = io.BytesIO(data)
    item = cbor2.CBORDecoder(stream, allow_duplicate_keys=False).decode()
    if stream.tell() != len(data):
        raise ValueError("bytes after the CBOR data item")
    return item


def _protected_header(protected: bytes) -> dict[Any, Any]:
    try:
        # RFC 9052 §3: a label that occurs twice in a header map makes the message malformed
        header = _cbor_item(protected) if protected else {}
    except Exception:
        raise EnvelopeRejected("malformed", "the protected header is not CBOR") from None
    if not isinstance(header, dict):
        raise EnvelopeRejected("malformed", "the protected header must be a map")
    # labels are integers or text (RFC 9052 §3); 1.0, 4.0 or true would otherwise find alg and kid by equality
    if any(type(label) not in (int, str) for label in header):
        raise EnvelopeRejected("malformed", "the protected header's labels must be integers or text")
    return header


def _device_id(kid: object) -> str:
    if not isinstance(kid, bytes):
        raise EnvelopeRejected("malformed", "the protected header names no device (kid)")
    try:
        device_id = kid.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeRejected("malformed", "kid is not UTF-8") from None
    if not DEVICE_ID.match(device_id):
        raise EnvelopeRejected("malformed", f"kid {device_id[:40]!r} is not a device id")
    return device_id


def _reading(payload: bytes) -> Reading:
    try:
        body = _cbor_item(payload)
    except Exception:
        raise EnvelopeRejected("malformed", "the payload is not CBOR (or has text that is not UTF-8)") from None
    if not (isinstance(body, dict) and set(body) == {"c", "t", "v"}):
        raise EnvelopeRejected("malformed", "the payload must be a map of c (counter), t (time) and v (values)")
    counter, millis, values = body["c"], body["t"], body["v"]
    if not (type(counter) is int and 0 < counter < MAX_COUNTER):
        raise EnvelopeRejected("malformed", "c must be a positive integer counter")
    if type(millis) is not int:
        raise EnvelopeRejected("malformed", "t must be epoch milliseconds")
    try:
        time = EPOCH + millis * MILLISECOND
    except (OverflowError, OSError, ValueError):
        raise EnvelopeRejected("malformed", "t is not a representable time") from None
    return Reading(counter, time, _values(values))


def _values(values: object) -> dict[str, Value]:
    if not isinstance(values, dict) or not values or len(values) > MAX_VALUES:
        raise EnvelopeRejected("malformed", f"v must be a map of 1 to {MAX_VALUES} values")
    checked: dict[str, Value] = {}
    for name, value in values.items():
        if not (isinstance(name, str) and VALUE_NAME.match(name)):
            raise EnvelopeRejected("malformed", f"{str(name)[:40]!r} is not a value name")
        if isinstance(value, float) and not math.isfinite(value):
            raise EnvelopeRejected("malformed", f"{name}: not a finite number")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise EnvelopeRejected("malformed", f"{name}: text over {MAX_TEXT} characters")
        if not isinstance(value, bool | int | float | str):
            raise EnvelopeRejected("malformed", f"{name}: a value is a number, text or true/false")
        checked[name] = value
    return checked
