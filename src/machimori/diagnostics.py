"""Problems found in a user's input, located by file, line and column."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in an input file; line and column are 1-based, 0 when unknown."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.line:
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}: {self.message}"


class InputError(Exception):
    """The user's input is wrong; carries every problem found, each printable on one line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: Sequence[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, message: str, line: int = 0, column: int = 0) -> InputError:
        """An error with one problem."""
        return cls([Problem(file, line, column, message)])


def read_user_file(path: str | Path) -> bytes:
    """The bytes of a file the user named; a missing or unreadable file is an InputError."""
    name = str(path)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError.single(name, "file not found / ファイルが見つかりません") from None
    except IsADirectoryError:
        raise InputError.single(name, "is a directory, expected a file / ディレクトリです") from None
    except OSError as exc:
        raise InputError.single(name, f"cannot read: {exc.strerror or exc}") from None


def write_user_file(path: str | Path, text: str) -> None:
    """Write text to a file the user named (creating its folder); failures are InputErrors."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError.single(str(path), f"cannot write: {exc.strerror or exc} / 書き込めません") from None
