"""Atomic file writes: a file either holds its complete new content or is untouched.

    atomic_write_text(path, text); atomic_write_bytes(path, data); atomic_torch_save(obj, path)
    append_line(path, json_text); records = read_jsonl(path)      # append-only JSON lines

Each writes to a temporary name in the target's folder and renames it into
place (os.replace is atomic on POSIX), so a killed process never leaves a
half-written file under the real name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save",
           "append_line", "read_jsonl"]


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


def atomic_torch_save(obj, path) -> None:
    import torch
    atomic_write(path, lambda f: torch.save(obj, f))


def append_line(path, line: str) -> None:
    """Append one whole line with a single write, then fsync: a kill leaves at most a partial last line,
    which read_jsonl drops."""
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path) -> list:
    """The records of a JSON-lines file written by append_line. A partial last line (a kill during the
    append) is dropped with a warning and cut from the file, so later appends start on a fresh line; a
    bad line before the last is an error naming the file and line."""
    import json
    import logging

    path = Path(path)
    if not path.is_file():
        return []
    raw = path.read_bytes()
    head, newline, tail = raw.rpartition(b"\n")            # head: the lines that were ended
    lines = head.split(b"\n") if newline else []
    records = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as err:
                raise ValueError(f"{path}:{n}: damaged line ({err})") from None
    if tail.strip():
        try:
            records.append(json.loads(tail))                  # whole, only its newline is missing
            with open(path, "ab") as f:
                f.write(b"\n")
        except ValueError:
            logging.getLogger(__name__).warning("%s: dropping a partial last line (%d bytes; a kill during an "
                                                "append)", path, len(tail))
            os.truncate(path, len(head) + len(newline))
    return records

