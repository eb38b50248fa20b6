"""A witness: checks that a log only grows (consistency) before cosigning its checkpoint."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from machimori.audit import merkle
from machimori.audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from machimori.audit.note import Signer, Verifier


class WitnessRefusal(Exception):
    """The log showed the witness something it must not cosign (a fork, a rollback, a bad signature)."""


@dataclass(frozen=True)
class WitnessState:
    """The newest checkpoint this witness cosigned for a log."""

    size: int
    root: bytes

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        if not path.exists():
            return cls(0, merkle.EMPTY_ROOT)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(int(data["size"]), base64.b64decode(data["root"]))

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"size": self.size, "root": base64.b64encode(self.root).decode()}))
        temporary.replace(path)


def cosign(
    note: str, log_key: Verifier, witness: Signer, seen: WitnessState, proof: list[bytes], now: int | None = None
) -> tuple[str, Checkpoint]:
    """The cosignature line for a checkpoint that is signed by the log and consistent with what was seen."""
    try:
        checkpoint = open_checkpoint(note, [log_key])
    except CheckpointError as error:
        raise WitnessRefusal(f"checkpoint not signed by the log: {error}") from None
    if checkpoint.size < seen.size:
        raise WitnessRefusal(f"the log went back from size {seen.size} to {checkpoint.size}")
    if not merkle.verify_consistency(seen.size, checkpoint.size, seen.root, checkpoint.root, proof):
        raise WitnessRefusal(f"size {checkpoint.size} is not an extension of size {seen.size}: the log forked")
    text = note[: note.index("\n\n") + 1]
    return witness.signature_line(text, int(time.time()) if now is None else now), checkpoint


def witness_once(server: str, log_key: Verifier, witness: Signer, state_path: Path) -> Checkpoint:
    """Fetch the log's checkpoint and proof, cosign if consistent, hand the cosignature back."""
    seen = WitnessState.load(state_path)
    with httpx.Client(base_url=server, timeout=30) as client:
        note = client.get("/api/v1/audit/checkpoint").raise_for_status().text
        size = int(note.split("\n")[1])
        answer = client.get("/api/v1/audit/proof/consistency", params={"first": seen.size, "second": size})
        proof = [base64.b64decode(h) for h in answer.raise_for_status().json()["hashes"]]
        line, checkpoint = cosign(note, log_key, witness, seen, proof)
        client.post(
            "/api/v1/audit/checkpoint/cosignatures", params={"tree_size": checkpoint.size}, content=line
        ).raise_for_status()
    WitnessState(checkpoint.size, checkpoint.root).save(state_path)
    return checkpoint
