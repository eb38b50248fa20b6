"""Key files readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path


def create_private_file(path: Path, data: bytes) -> bool:
    """Write data to a new file with mode 0600; False (and nothing written) if the file already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return True
