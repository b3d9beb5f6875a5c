"""Atomic file writes: a file either holds its complete new content or is untouched.

    atomic_write_text(path, text); atomic_write_bytes(path, data); atomic_copy(src, dst)

Each writes to a temporary name in the target's folder and renames it into
place (os.replace is atomic on POSIX), so a killed process never leaves a
half-written file under the real name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_copy", "atomic_torch_save"]


def atomic_write(path, fill) -> None:
    """Call fill(binary file) on a temporary file, then move it to path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_copy(src, dst) -> None:
    with open(src, "rb") as source:
        atomic_write(dst, lambda f: shutil.copyfileobj(source, f))


def atomic_torch_save(obj, path) -> None:
    import torch
    atomic_write(path, lambda f: torch.save(obj, f))
