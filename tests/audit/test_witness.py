"""A witness cosigns only a log that grew honestly."""

from __future__ import annotations

import pytest

from machimori.audit import merkle
from machimori.audit.checkpoint import Checkpoint, sign_checkpoint
from machimori.audit.note import COSIGNATURE_V1, Signer, parse
from machimori.audit.witness import WitnessRefusal, WitnessState, cosign

from .test_merkle import StoredTree

LOG = Signer.generate("city.example/audit")
WITNESS = Signer.generate("witness.example/w1", COSIGNATURE_V1)


def note_of(tree: StoredTree, size: int, signer: Signer = LOG) -> str:
    return str(sign_checkpoint(Checkpoint("city.example/audit", size, tree.roots[size - 1]), [signer]))


def proof(tree: StoredTree, first: int, second: int) -> list[bytes]:
    return [tree.hash(b, e) for b, e in merkle.consistency_ranges(first, second)]


def test_an_honest_extension_is_cosigned() -> None:
    tree = StoredTree([b"%d" % i for i in range(20)])
    seen = WitnessState(8, tree.roots[7])
    line, checkpoint = cosign(note_of(tree, 20), LOG.verifier, WITNESS, seen, proof(tree, 8, 20), now=1_800_000_000)
    assert checkpoint.size == 20
    cosigned = parse(note_of(tree, 20)).with_signature_line(line)
    assert cosigned.verified_by([WITNESS.verifier]) == [WITNESS.verifier]


def test_a_fork_is_refused() -> None:
    honest = StoredTree([b"%d" % i for i in range(20)])
    forked = StoredTree([b"%d" % i for i in range(7)] + [b"rewritten"] + [b"%d" % i for i in range(8, 20)])
    seen = WitnessState(10, honest.roots[9])
    with pytest.raises(WitnessRefusal, match="forked"):
        cosign(note_of(forked, 20), LOG.verifier, WITNESS, seen, proof(forked, 10, 20))


def test_a_rollback_is_refused() -> None:
    tree = StoredTree([b"%d" % i for i in range(20)])
    with pytest.raises(WitnessRefusal, match="went back"):
        cosign(note_of(tree, 5), LOG.verifier, WITNESS, WitnessState(9, tree.roots[8]), [])


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    tree = StoredTree([b"%d" % i for i in range(4)])
    impostor = Signer.generate("city.example/audit")
    with pytest.raises(WitnessRefusal, match="not signed by the log"):
        cosign(note_of(tree, 4, impostor), LOG.verifier, WITNESS, WitnessState(0, merkle.EMPTY_ROOT), [])
