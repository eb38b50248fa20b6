"""The operator's signing keys (the city's trust anchor) kept in the data directory."""

from __future__ import annotations

from pathlib import Path

from machimori.audit.note import NoteError, Signer, Verifier
from machimori.diagnostics import InputError
from machimori.keyfiles import create_private_file

SIGNING_DIR = "audit-signing"


def signing_dir(keys_dir: Path) -> Path:
    return keys_dir / SIGNING_DIR


def write_private_key(path: Path, signer: Signer) -> None:
    """Write a signer key readable by its owner only, refusing to overwrite."""
    if not create_private_file(path, (str(signer) + "\n").encode("ascii")):
        raise FileExistsError(path)


def read_signer(path: Path) -> Signer:
    """A signer key from a file; InputError if unreadable or malformed."""
    try:
        return Signer.parse(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError.single(str(path), f"cannot read the key: {error}") from None
    except NoteError as error:
        raise InputError.single(str(path), str(error)) from None


def read_verifier(text_or_path: str) -> Verifier:
    """A verifier key given as the key string itself or as a file holding it."""
    candidate = Path(text_or_path)
    source = text_or_path
    if "+" not in text_or_path or candidate.is_file():
        try:
            source = candidate.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError.single(text_or_path, f"cannot read the key: {error.strerror or error}") from None
    try:
        return Verifier.parse(source)
    except NoteError as error:
        raise InputError.single(text_or_path, str(error)) from None


def signing_keys(keys_dir: Path, origin: str, create: bool = True) -> list[Signer]:
    """The log's signing keys: every *.key in the signing folder; a first one is made if there is none."""
    folder = signing_dir(keys_dir)
    signers = [read_signer(path) for path in sorted(folder.glob("*.key"))]
    if not signers and create:
        signer = Signer.generate(origin)
        write_private_key(folder / "current.key", signer)
        (folder / "current.vkey").write_text(str(signer.verifier) + "\n", encoding="ascii")
        signers = [signer]
    return signers
