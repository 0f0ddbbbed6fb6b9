"""Errors that name the file: a damaged weight file on read, a failed write (full disk, file size limit)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

# What a failed write looks like in the messages of OSError, safetensors (Rust) and torch.save (C++).
_DISK_FULL = ("No space left", "File too large", "Disk quota", "unexpected pos")


class DamagedFileError(ValueError):
    """A file that exists but cannot be read back (truncated, corrupted); the message names it."""

    def __init__(self, path: str | Path, err: BaseException | str):
        self.path = str(path)
        why = err if isinstance(err, str) else f"{type(err).__name__}: {str(err)[:200]}"
        super().__init__(f"{path}: damaged or truncated file ({why})")


class WriteError(OSError):
    """A write that failed; the message names the file and what was kept."""


@contextlib.contextmanager
def writing(path: str | Path, kept: str = "") -> Iterator[None]:
    """Turn an error raised while writing ``path`` into a :class:`WriteError` naming it (and ``kept``).

    safetensors and torch.save report a full disk as their own exception types, hence any Exception.
    """
    try:
        yield
    except WriteError:
        raise
    except Exception as err:
        why = f"{type(err).__name__}: {str(err)[:200]}"
        if any(sign in str(err) for sign in _DISK_FULL):
            why += " (the disk is full or a file size limit was reached)"
        raise WriteError(f"cannot write {path}: {why}" + (f"; {kept}" if kept else "")) from err


def check_safetensors(path: str | Path) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` is a whole safetensors file (header and every tensor's bytes)."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ValueError(f"{size} bytes, shorter than the 8-byte header length")
            length = int.from_bytes(head, "little")
            if 8 + length > size:
                raise ValueError(f"the header of {length} bytes runs past the end of the file ({size} bytes)")
            header = json.loads(handle.read(length))
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise DamagedFileError(path, err) from None
    if 8 + length + end > size:
        raise DamagedFileError(path, f"{size} bytes, but its tensors end at byte {8 + length + end}")
