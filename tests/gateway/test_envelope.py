"""COSE telemetry envelopes (RFC 9052): round trips, interoperability with pycose, and every way an attacker or
a broken device can get a message refused — by the reason the gateway gives."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycose.algorithms import HMAC256, EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey, SymmetricKey
from pycose.keys.curves import Ed25519
from pycose.messages import Mac0Message, Sign1Message

from machimori.gateway.envelope import (
    MAC0_TAG,
    MAX_COUNTER,
    MAX_ENVELOPE_BYTES,
    MAX_TEXT,
    MAX_VALUES,
    SIGN1_TAG,
    Envelope,
    EnvelopeRejected,
    Reading,
    mac_reading,
    open_envelope,
    sign_reading,
)

DEVICE = "aq-0042"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
SECRET = b"a 32-byte HMAC secret for tests!"
OTHER_SECRET = b"another 32-byte HMAC secret ...."
WHEN = dt.datetime(2026, 4, 1, 9, 30, 15, 250000, tzinfo=dt.UTC)
MILLIS = 1775035815250  # WHEN in epoch milliseconds
READING = Reading(7, WHEN, {"temperature": 21.5, "pm25": 12, "ok": True, "label": "東京 north"})
ED_PROTECTED = {1: -8, 4: DEVICE.encode()}
MAC_PROTECTED = {1: 5, 4: DEVICE.encode()}


# --- building messages by hand, signed correctly, so that the checks after the signature are reached ----------
def payload(**fields: Any) -> bytes:
    """The CBOR payload of a good reading, with some fields replaced (None: left out)."""
    body: dict[str, Any] = {"c": 7, "t": MILLIS, "v": {"temperature": 21.5}}
    for name, value in fields.items():
        if value is None:
            del body[name]
        else:
            body[name] = value
    return bytes(cbor2.dumps(body))


def raw_payload(values: bytes, counter: bytes = b"\x07") -> bytes:
    """A payload map spelled out in CBOR bytes: {"c": counter, "t": MILLIS, "v": <values bytes>}."""
    return b"\xa3" + b"\x61c" + counter + b"\x61t" + bytes(cbor2.dumps(MILLIS)) + b"\x61v" + values


def sign1(
    body: bytes,
    protected: dict[Any, Any] | bytes | None = None,
    *,
    key: Ed25519PrivateKey = KEY,
    unprotected: Any = None,
    tag: int = SIGN1_TAG,
) -> bytes:
    """A COSE_Sign1 message, the signature made with `key` over exactly these bytes (RFC 9052 §4.4)."""
    header = (
        protected
        if isinstance(protected, bytes)
        else bytes(cbor2.dumps(ED_PROTECTED if protected is None else protected))
    )
    signature = key.sign(cbor2.dumps(["Signature1", header, b"", body]))
    return bytes(cbor2.dumps(cbor2.CBORTag(tag, [header, {} if unprotected is None else unprotected, body, signature])))


def mac0(body: bytes, protected: dict[Any, Any] | bytes | None = None, *, secret: bytes = SECRET) -> bytes:
    """A COSE_Mac0 message, the tag computed with `secret` over exactly these bytes (RFC 9052 §6.3)."""
    header = (
        protected
        if isinstance(protected, bytes)
        else bytes(cbor2.dumps(MAC_PROTECTED if protected is None else protected))
    )
    tag = hmac.new(secret, cbor2.dumps(["MAC0", header, b"", body]), hashlib.sha256).digest()
    return bytes(cbor2.dumps(cbor2.CBORTag(MAC0_TAG, [header, {}, body, tag])))


def reason(raw: bytes, key: Ed25519PublicKey | bytes | None = None) -> str:
    """Why the gateway refuses the message (opened, then verified with the device's key)."""
    with pytest.raises(EnvelopeRejected) as refused:
        open_envelope(raw).verified_reading(KEY.public_key() if key is None else key)
    return refused.value.reason


def accepted(raw: bytes, key: Ed25519PublicKey | bytes | None = None) -> Reading:
    return open_envelope(raw).verified_reading(KEY.public_key() if key is None else key)


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def pycose_decode(raw: bytes, kind: type[Sign1Message] | type[Mac0Message]) -> Any:
    """pycose 1.1's own decode() expects cbor2 < 6 (mutable lists and dicts inside a tag); the parsing of the
    headers, the Sig/MAC structure and the cryptography are still pycose's."""
    message = cbor2.loads(raw)
    assert isinstance(message, cbor2.CBORTag) and message.tag == kind.cbor_tag
    protected, unprotected, body, tag = message.value
    return kind.from_cose_obj([protected, dict(unprotected), body, tag], True)


# --- round trips ------------------------------------------------------------------------------------------------
def test_sign1_round_trip() -> None:
    raw = sign_reading(DEVICE, READING, KEY)
    envelope = open_envelope(raw)
    assert (envelope.kind, envelope.device_id, envelope.raw) == ("sign1", DEVICE, raw)
    assert cbor2.loads(envelope.protected) == ED_PROTECTED
    reading = envelope.verified_reading(KEY.public_key())
    assert reading == READING
    assert type(reading.values["ok"]) is bool and type(reading.values["pm25"]) is int


def test_mac0_round_trip() -> None:
    raw = mac_reading(DEVICE, READING, SECRET)
    envelope = open_envelope(raw)
    assert (envelope.kind, envelope.device_id) == ("mac0", DEVICE)
    assert cbor2.loads(envelope.protected) == MAC_PROTECTED
    assert envelope.verified_reading(SECRET) == READING


def test_payload_is_the_documented_shape() -> None:
    body = cbor2.loads(open_envelope(sign_reading(DEVICE, READING, KEY)).payload)
    assert body == {"c": 7, "t": MILLIS, "v": READING.values}


def test_limits_are_inclusive() -> None:
    values: dict[str, Any] = {f"v{i}": i for i in range(MAX_VALUES - 1)}
    values["text"] = "あ" * MAX_TEXT
    reading = Reading(MAX_COUNTER - 1, WHEN, values)
    assert accepted(sign_reading("a" * 128, reading, KEY)) == reading


# Regression: int(timestamp() * 1000) lost a millisecond to float rounding at this instant (and ~1 in 130 others).
@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2038, 7, 9, 4, 52, 37, 55000, tzinfo=dt.UTC),
        dt.datetime(1935, 3, 22, 5, 12, 29, 380000, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC),
    ],
)
def test_time_survives_the_round_trip_to_the_millisecond(when: dt.datetime) -> None:
    assert accepted(sign_reading(DEVICE, Reading(1, when, {"a": 1}), KEY)).time == when


@settings(max_examples=300, deadline=None)
@given(millis=st.integers(min_value=-2_208_988_800_000, max_value=7_258_118_400_000))  # 1900 to 2200
def test_any_millisecond_time_survives_the_round_trip(millis: int) -> None:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)
    raw = mac_reading(DEVICE, Reading(1, when, {"a": 1}), SECRET)
    assert cbor2.loads(open_envelope(raw).payload)["t"] == millis
    assert accepted(raw, SECRET).time == when


def test_sub_millisecond_time_is_cut_to_the_millisecond() -> None:
    when = dt.datetime(2026, 4, 1, 9, 30, 15, 250999, tzinfo=dt.UTC)
    assert accepted(sign_reading(DEVICE, Reading(1, when, {"a": 1}), KEY)).time == WHEN


def test_other_time_zones_and_naive_local_time_mean_the_same_instant() -> None:
    tokyo = WHEN.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert accepted(sign_reading(DEVICE, Reading(1, tokyo, {"a": 1}), KEY)).time == WHEN
    naive = WHEN.astimezone().replace(tzinfo=None)  # local wall-clock time, as datetime.timestamp() reads it
    assert accepted(sign_reading(DEVICE, Reading(1, naive, {"a": 1}), KEY)).time == WHEN


# --- interoperability with pycose ----------------------------------------------------------------------------
def test_our_sign1_verifies_in_pycose() -> None:
    message = pycose_decode(sign_reading(DEVICE, READING, KEY), Sign1Message)
    assert message.phdr == {Algorithm: EdDSA, KID: DEVICE.encode()}
    message.key = OKPKey(crv=Ed25519, x=raw_public(KEY))
    assert message.verify_signature()
    assert cbor2.loads(message.payload) == {"c": 7, "t": MILLIS, "v": READING.values}
    message.key = OKPKey(crv=Ed25519, x=raw_public(OTHER_KEY))
    assert not message.verify_signature()  # so the check above means something


def test_pycose_sign1_is_accepted() -> None:
    body = cbor2.dumps({"c": 41, "t": MILLIS, "v": {"LAeq": 55.5, "door": False}})
    private = KEY.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    message = Sign1Message(phdr={Algorithm: EdDSA, KID: b"noise-7"}, payload=body)
    message.key = OKPKey(crv=Ed25519, d=private, x=raw_public(KEY))
    raw = message.encode()
    assert raw[0] == 0xD2  # tag 18
    envelope = open_envelope(raw)
    assert (envelope.kind, envelope.device_id) == ("sign1", "noise-7")
    assert envelope.verified_reading(KEY.public_key()) == Reading(41, WHEN, {"LAeq": 55.5, "door": False})
    assert reason(raw, OTHER_KEY.public_key()) == "bad-signature"


def test_our_mac0_verifies_in_pycose() -> None:
    message = pycose_decode(mac_reading(DEVICE, READING, SECRET), Mac0Message)
    assert message.phdr == {Algorithm: HMAC256, KID: DEVICE.encode()}
    message.key = SymmetricKey(k=SECRET)
    assert message.verify_tag()
    message.key = SymmetricKey(k=OTHER_SECRET)
    assert not message.verify_tag()


def test_pycose_mac0_is_accepted() -> None:
    body = cbor2.dumps({"c": 3, "t": MILLIS, "v": {"waterLevel": 1.25}})
    message = Mac0Message(phdr={Algorithm: HMAC256, KID: b"river.gauge_2"}, payload=body)
    message.key = SymmetricKey(k=SECRET)
    raw = message.encode()
    assert raw[0] == 0xD1  # tag 17
    envelope = open_envelope(raw)
    assert (envelope.kind, envelope.device_id) == ("mac0", "river.gauge_2")
    assert envelope.verified_reading(SECRET) == Reading(3, WHEN, {"waterLevel": 1.25})
    assert reason(raw, OTHER_SECRET) == "bad-signature"


# --- forged, altered and cut messages ------------------------------------------------------------------------
def test_another_devices_key_is_a_bad_signature() -> None:
    forged = sign_reading(DEVICE, READING, OTHER_KEY)  # claims DEVICE, signed by some other device
    assert open_envelope(forged).device_id == DEVICE
    assert reason(forged) == "bad-signature"


def test_mac_computed_with_the_wrong_secret_is_a_bad_signature() -> None:
    assert reason(mac_reading(DEVICE, READING, OTHER_SECRET), SECRET) == "bad-signature"
    assert reason(mac0(payload(), secret=SECRET[:-1]), SECRET) == "bad-signature"


def test_truncated_mac_tag_is_a_bad_signature() -> None:
    full = cbor2.loads(mac_reading(DEVICE, READING, SECRET))
    protected, _, body, tag = full.value
    for length in (0, 1, 8, 16, 31):
        short = cbor2.dumps(cbor2.CBORTag(MAC0_TAG, [protected, {}, body, tag[:length]]))
        assert reason(short, SECRET) == "bad-signature"


def test_ed25519_message_checked_with_an_hmac_secret_is_the_wrong_algorithm() -> None:
    assert reason(sign_reading(DEVICE, READING, KEY), SECRET) == "wrong-algorithm"


def test_hmac_message_checked_with_an_ed25519_key_is_the_wrong_algorithm() -> None:
    assert reason(mac_reading(DEVICE, READING, SECRET), KEY.public_key()) == "wrong-algorithm"


def test_hmac_keyed_with_the_ed25519_public_key_bytes_does_not_pass() -> None:
    """An attacker who knows a device's public key MACs a message with it; the gateway holds the key object."""
    forged = mac0(payload(), secret=raw_public(KEY))
    assert reason(forged, KEY.public_key()) == "wrong-algorithm"


def _regions(raw: bytes) -> tuple[range, range]:
    envelope = open_envelope(raw)
    start = raw.index(envelope.payload)
    return range(start, start + len(envelope.payload)), range(len(raw) - len(envelope.tag), len(raw))


@pytest.mark.parametrize("kind", ["sign1", "mac0"])
def test_every_flipped_bit_is_refused(kind: str) -> None:
    raw = sign_reading(DEVICE, READING, KEY) if kind == "sign1" else mac_reading(DEVICE, READING, SECRET)
    key: Ed25519PublicKey | bytes = KEY.public_key() if kind == "sign1" else SECRET
    payload_bytes, tag_bytes = _regions(raw)
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            why = reason(bytes(flipped), key)
            if index in payload_bytes or index in tag_bytes:
                assert why == "bad-signature", (index, bit)
            else:
                assert why in ("malformed", "wrong-algorithm", "bad-signature"), (index, bit)


def test_flipped_bits_in_the_protected_header_are_refused() -> None:
    """kid and alg are signed: change either and the message is refused, whatever the change parses as."""
    raw = sign_reading(DEVICE, READING, KEY)
    protected = open_envelope(raw).protected
    start = raw.index(protected)
    reasons = set()
    for index in range(start, start + len(protected)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            reasons.add(reason(bytes(flipped)))
    assert reasons == {"malformed", "wrong-algorithm", "bad-signature"}


@pytest.mark.parametrize("kind", ["sign1", "mac0"])
def test_every_prefix_is_refused_as_malformed(kind: str) -> None:
    raw = sign_reading(DEVICE, READING, KEY) if kind == "sign1" else mac_reading(DEVICE, READING, SECRET)
    for length in range(len(raw)):
        with pytest.raises(EnvelopeRejected) as refused:
            open_envelope(raw[:length])
        assert refused.value.reason == "malformed", length


def test_bytes_after_the_message_are_refused() -> None:
    raw = sign_reading(DEVICE, READING, KEY)
    for tail in (b"\x00", b"\xff", raw):
        with pytest.raises(EnvelopeRejected) as refused:
            open_envelope(raw + tail)
        assert refused.value.reason == "malformed"


def test_oversized_is_refused_before_parsing() -> None:
    with pytest.raises(EnvelopeRejected) as refused:
        open_envelope(b"\xff" * (MAX_ENVELOPE_BYTES + 1))
    assert refused.value.reason == "oversized"
    big = Reading(1, WHEN, {f"t{i}": "x" * MAX_TEXT for i in range(20)})  # a genuine, well-signed message
    raw = sign_reading(DEVICE, big, KEY)
    assert len(raw) > MAX_ENVELOPE_BYTES
    with pytest.raises(EnvelopeRejected) as refused:
        open_envelope(raw)
    assert refused.value.reason == "oversized"


def test_exactly_the_maximum_size_is_accepted() -> None:
    bare = sign1(payload(), unprotected={99: b""})
    padding = MAX_ENVELOPE_BYTES - len(bare)
    for extra in range(padding, padding - 4, -1):  # the bstr's length prefix grows with it
        raw = sign1(payload(), unprotected={99: b"x" * extra})
        if len(raw) == MAX_ENVELOPE_BYTES:
            break
    assert len(raw) == MAX_ENVELOPE_BYTES
    assert accepted(raw).counter == 7
    with pytest.raises(EnvelopeRejected) as refused:
        open_envelope(sign1(payload(), unprotected={99: b"x" * (extra + 1)}))
    assert refused.value.reason == "oversized"


# --- structure ---------------------------------------------------------------------------------------------------
def _open_reason(raw: bytes) -> str:
    with pytest.raises(EnvelopeRejected) as refused:
        open_envelope(raw)
    return refused.value.reason


def test_untagged_array_is_malformed() -> None:
    message = cbor2.loads(sign_reading(DEVICE, READING, KEY))
    assert _open_reason(cbor2.dumps(list(message.value))) == "malformed"


@pytest.mark.parametrize("tag", [16, 19, 96, 97, 98, 61, 1, 55799])
def test_other_tags_are_malformed(tag: int) -> None:
    message = cbor2.loads(sign_reading(DEVICE, READING, KEY))
    assert _open_reason(cbor2.dumps(cbor2.CBORTag(tag, list(message.value)))) == "malformed"


def test_a_sign1_under_the_mac0_tag_is_the_wrong_algorithm() -> None:
    assert _open_reason(sign1(payload(), tag=MAC0_TAG)) == "wrong-algorithm"
    assert _open_reason(sign1(payload(), MAC_PROTECTED)) == "wrong-algorithm"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xd2",
        cbor2.dumps({"c": 1}),
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [b"", {}, b""])),
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [b"", {}, b"", b"", b""])),
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, {0: b""})),
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [ED_PROTECTED, {}, b"p", b"s"])),  # protected not wrapped in a bstr
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [cbor2.dumps(ED_PROTECTED), {}, None, b"s"])),  # detached payload
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [cbor2.dumps(ED_PROTECTED), {}, "text", b"s"])),
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [cbor2.dumps(ED_PROTECTED), {}, b"p", "sig"])),
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [cbor2.dumps(ED_PROTECTED), [], b"p", b"s"])),  # unprotected not a map
        cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [cbor2.dumps(ED_PROTECTED), None, b"p", b"s"])),
        b"\x81" * 1000 + b"\x00",  # nesting deeper than the decoder allows
        b"\xd2\x84\x5f\x41\x00",  # indefinite byte string left open
        b"\xd2\x84\x43\xa1\x01",  # protected bstr runs past the end
    ],
)
def test_malformed_structures(raw: bytes) -> None:
    assert _open_reason(raw) == "malformed"


@pytest.mark.parametrize(
    "protected",
    [
        b"\xff",  # not CBOR
        cbor2.dumps([1, -8]),  # not a map
        cbor2.dumps({1: -8, 4: DEVICE.encode()}) + b"\x00",  # a second item after the header
        b"\xa3\x01\x27\x04\x47aq-0042\x04\x44root",  # kid twice (RFC 9052 §3: malformed)
        b"\xa3\x01\x27\x01\x26\x04\x47aq-0042",  # alg twice
        cbor2.dumps({True: -8, 4: DEVICE.encode()}),  # true == 1 in Python: must not pass as the alg label
        cbor2.dumps({1.0: -8, 4: DEVICE.encode()}),
        cbor2.dumps({1: -8, 4.0: DEVICE.encode()}),
    ],
)
def test_bad_protected_headers_are_malformed(protected: bytes) -> None:
    assert _open_reason(sign1(payload(), protected)) == "malformed"


@pytest.mark.parametrize(
    "protected",
    [
        {1: -7, 4: b"aq-0042"},  # ES256
        {1: -35, 4: b"aq-0042"},  # ES384
        {1: 5, 4: b"aq-0042"},  # HMAC in a Sign1
        {1: "EdDSA", 4: b"aq-0042"},
        {1: -8.0, 4: b"aq-0042"},
        {1: None, 4: b"aq-0042"},
        {4: b"aq-0042"},  # alg absent
        b"",  # empty protected header: nothing signed about the algorithm
    ],
)
def test_sign1_with_another_algorithm_is_refused(protected: dict[Any, Any] | bytes) -> None:
    assert _open_reason(sign1(payload(), protected)) == "wrong-algorithm"


def test_alg_only_in_the_unprotected_header_is_refused() -> None:
    raw = sign1(payload(), {4: b"aq-0042"}, unprotected={1: -8})
    assert _open_reason(raw) == "wrong-algorithm"


@pytest.mark.parametrize("protected", [{1: 4, 4: b"aq-0042"}, {1: 6, 4: b"aq-0042"}, {1: -8, 4: b"aq-0042"}])
def test_mac0_with_another_algorithm_is_refused(protected: dict[Any, Any]) -> None:
    """HMAC 256/64 (4) would accept an 8-byte tag; HMAC 384 (6) and EdDSA are not what the device registered."""
    assert _open_reason(mac0(payload(), protected)) == "wrong-algorithm"


@pytest.mark.parametrize(
    "kid",
    [
        None,  # absent
        "aq-0042",  # text, not bytes
        42,
        [b"aq-0042"],
        b"",
        b"\xff\xfeaq",  # not UTF-8
        b"\xc0\xaf",  # overlong '/'
        b"'; DROP TABLE devices;--",
        b"../../etc/passwd",
        b"a/b",
        b"a\\b",
        b"aq-0042\x00admin",
        b"aq-0042\n",
        b"\naq-0042",
        b" aq-0042",
        b"-leading-dash",
        b".hidden",
        b"a" * 129,
        "dév".encode(),
        "ａｑ".encode(),  # fullwidth letters
        b"aq 0042",
        b"aq%2F0042",
        b"${jndi:ldap://x}",
    ],
)
def test_bad_kid_is_malformed(kid: object) -> None:
    protected: dict[Any, Any] = {1: -8} if kid is None else {1: -8, 4: kid}
    assert _open_reason(sign1(payload(), protected)) == "malformed"


def test_kid_only_in_the_unprotected_header_is_malformed() -> None:
    """An unsigned kid would let anyone relabel another device's message."""
    assert _open_reason(sign1(payload(), {1: -8}, unprotected={4: DEVICE.encode()})) == "malformed"


def test_unprotected_kid_does_not_override_the_signed_one() -> None:
    envelope = open_envelope(sign1(payload(), unprotected={4: b"someone-else"}))
    assert envelope.device_id == DEVICE


@pytest.mark.parametrize("kid", ["a", "A.b_c-9", "a" * 128, "0"])
def test_good_kids_are_accepted(kid: str) -> None:
    assert open_envelope(sign1(payload(), {1: -8, 4: kid.encode()})).device_id == kid


# --- payload (checked only once the signature is good, so each of these is signed properly) ----------------------
def _payload_reason(body: bytes) -> str:
    raw = sign1(body)
    open_envelope(raw)  # the structure is fine; the payload is judged after the signature
    return reason(raw)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff",
        b"\x1b",  # truncated integer
        cbor2.dumps([7, MILLIS, {"a": 1}]),
        cbor2.dumps("c"),
        payload() + b"\x00",  # a second item after the map
        b"\xa4\x61c\x07\x61c\x08\x61t" + cbor2.dumps(MILLIS) + b"\x61v\xa1\x61a\x01",  # c twice
        raw_payload(b"\xa1\x61a\x62\xff\xfe"),  # text value that is not UTF-8
        raw_payload(b"\xa1\x62\xc3\x28\x01"),  # value name that is not UTF-8
        raw_payload(b"\xa1\x61a\x63\xed\xa0\x80"),  # a UTF-16 surrogate encoded in UTF-8
        raw_payload(b"\xa2\x61a\x01\x61a\x02"),  # a value name twice
        raw_payload(b"\xa1\x61a\x01", counter=b"\x61\xff"),  # counter: text, not UTF-8
    ],
)
def test_payload_that_is_not_good_cbor_is_malformed(body: bytes) -> None:
    assert _payload_reason(body) == "malformed"


@pytest.mark.parametrize("missing", ["c", "t", "v"])
def test_payload_key_missing_is_malformed(missing: str) -> None:
    assert _payload_reason(payload(**{missing: None})) == "malformed"


@pytest.mark.parametrize("extra", [{"x": 1}, {"kid": "aq-0001"}, {1: 2}, {"C": 7}])
def test_payload_extra_key_is_malformed(extra: dict[Any, Any]) -> None:
    body = {"c": 7, "t": MILLIS, "v": {"a": 1}, **extra}
    assert _payload_reason(cbor2.dumps(body)) == "malformed"


@pytest.mark.parametrize(
    "counter", [0, -1, -(2**64), 1.0, 7.5, math.nan, True, False, "7", b"\x07", None, [7], MAX_COUNTER, 2**64, 2**100]
)
def test_bad_counter_is_malformed(counter: object) -> None:
    assert (
        _payload_reason(
            payload(c=counter) if counter is not None else cbor2.dumps({"c": None, "t": MILLIS, "v": {"a": 1}})
        )
        == "malformed"
    )


@pytest.mark.parametrize("counter", [1, 2**32, MAX_COUNTER - 1])
def test_counter_limits(counter: int) -> None:
    assert accepted(sign1(payload(c=counter))).counter == counter


@pytest.mark.parametrize(
    "time",
    [
        float(MILLIS),
        math.inf,
        "2026-04-01T09:30:15Z",
        True,
        b"\x00",
        [MILLIS],
        cbor2.CBORTag(1, 1775035815),
        10**20,
        -(10**20),
        2**64,
    ],
)
def test_bad_time_is_malformed(time: object) -> None:
    assert _payload_reason(payload(t=time)) == "malformed"


def test_null_time_is_malformed() -> None:
    assert _payload_reason(cbor2.dumps({"c": 7, "t": None, "v": {"a": 1}})) == "malformed"


@pytest.mark.parametrize(
    "values",
    [
        {},
        {f"v{i}": i for i in range(MAX_VALUES + 1)},
        [1, 2],
        "temperature=21",
        {"": 1},
        {"1abc": 1},
        {"_a": 1},
        {"a-b": 1},
        {"a.b": 1},
        {"a b": 1},
        {"a\n": 1},
        {"été": 1},
        {"a" * 65: 1},
        {1: 1},
        {b"a": 1},
        {"a": math.nan},
        {"a": math.inf},
        {"a": -math.inf},
        {"a": "x" * (MAX_TEXT + 1)},
        {"a": {"b": 1}},
        {"a": [1, 2]},
        {"a": b"bytes"},
        {"a": None},
        {"a": cbor2.CBORTag(1, 0)},  # a date, decoded by cbor2 to a datetime
        {"a": cbor2.CBORTag(4, [-1, 5])},  # a decimal fraction
        {"a": cbor2.CBORTag(99999, 1)},  # an unknown tag
        {"a": cbor2.undefined},
    ],
)
def test_bad_values_are_malformed(values: object) -> None:
    assert _payload_reason(payload(v=values)) == "malformed"


def test_good_values_of_every_kind() -> None:
    values = {"a": 0, "b": -5, "c": 1.5e300, "d": -0.0, "e": "", "f": True, "g": False, "A9_z": "文字"}
    assert accepted(sign1(payload(v=values))).values == values


# --- properties: nothing but EnvelopeRejected, whatever arrives ---------------------------------------------------
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_or_opened(raw: bytes) -> None:
    try:
        envelope = open_envelope(raw)
    except EnvelopeRejected as refused:
        assert refused.reason in ("malformed", "wrong-algorithm")
        return
    assert isinstance(envelope, Envelope)
    with pytest.raises(EnvelopeRejected):
        envelope.verified_reading(KEY.public_key() if envelope.kind == "sign1" else SECRET)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=60))
def test_arbitrary_bytes_after_a_cose_prefix_are_refused_or_opened(raw: bytes) -> None:
    """Most random bytes die at the first byte; these start like a COSE_Sign1 / COSE_Mac0 message."""
    for start in (b"\xd2\x84", b"\xd1\x84", b"\xd2\x84\x4a\xa2\x01\x27\x04\x45"):
        try:
            envelope = open_envelope(start + raw)
        except EnvelopeRejected:
            continue
        with pytest.raises(EnvelopeRejected):
            envelope.verified_reading(KEY.public_key() if envelope.kind == "sign1" else SECRET)


cbor_leaves = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.booleans(),
    st.none(),
)
cbor_values = st.recursive(
    cbor_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-3, 3)), inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        cbor_values,
        st.fixed_dictionaries({"c": cbor_values, "t": cbor_values, "v": cbor_values}),
        st.fixed_dictionaries(
            {
                "c": st.integers(min_value=-5, max_value=2**63),
                "t": st.integers(min_value=-(2**64), max_value=2**64),
                "v": st.dictionaries(st.text(max_size=70), cbor_values, max_size=MAX_VALUES + 2),
            }
        ),
    )
)
def test_any_signed_payload_gives_a_checked_reading_or_malformed(body: Any) -> None:
    raw = sign1(bytes(cbor2.dumps(body)))
    try:
        reading = accepted(raw)
    except EnvelopeRejected as refused:
        assert refused.reason in ("malformed", "oversized")
        return
    assert 0 < reading.counter < MAX_COUNTER
    assert reading.time.tzinfo is not None
    assert 1 <= len(reading.values) <= MAX_VALUES
    for name, value in reading.values.items():
        assert name.isascii() and name[0].isalpha()
        assert isinstance(value, bool | int | float | str)
        assert not (isinstance(value, float) and not math.isfinite(value))
        assert not (isinstance(value, str) and len(value) > MAX_TEXT)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.just(0)),
)


@settings(max_examples=250, deadline=None)
@given(kind=st.sampled_from(["sign1", "mac0"]), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_messages_are_refused_or_carry_the_original_reading(
    kind: str, mutations: list[tuple[str, int, int]]
) -> None:
    """A flipped, inserted or deleted byte never yields another exception, nor a reading the device did not sign."""
    original = sign_reading(DEVICE, READING, KEY) if kind == "sign1" else mac_reading(DEVICE, READING, SECRET)
    key: Ed25519PublicKey | bytes = KEY.public_key() if kind == "sign1" else SECRET
    data = bytearray(original)
    for operation, position, byte in mutations:
        if operation == "flip" and data:
            data[position % len(data)] ^= byte
        elif operation == "insert":
            data.insert(position % (len(data) + 1), byte)
        elif operation == "delete" and data:
            del data[position % len(data)]
    try:
        envelope = open_envelope(bytes(data))
        reading = envelope.verified_reading(key)
    except EnvelopeRejected as refused:
        assert refused.reason in ("malformed", "wrong-algorithm", "bad-signature")
        return
    assert envelope.device_id == DEVICE
    assert reading == READING
