"""Atomic file writes: a file either holds its complete new content or is untouched.

    atomic_write_text(path, text); atomic_write_bytes(path, data); atomic_torch_save(obj, path)
    append_line(path, json_text); records = read_jsonl(path)      # append-only JSON lines
    save_checked(obj, path); obj = load_checked(path)            # a cache file with its size / SHA-256 record

Each writes to a temporary name in the target's folder and renames it into
place (os.replace is atomic on POSIX), so a killed process never leaves a
half-written file under the real name. Files get the mode the umask gives any
new file (a cache shared by a group stays readable by the group).

Cache files (embedding parts, latent chunks, models trained on real data) follow
one rule: the file, then `<file>.sha256` (its size and SHA-256) written after it;
load_checked returns None for a missing or unrecorded file (not finished) and
for a damaged one (named in a warning and set aside), so the caller rebuilds it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save",
           "append_line", "read_jsonl", "save_checked", "load_checked", "record_of", "file_matches_record"]


def _new_file_mode() -> int:
    """0o666 less the process umask: what open() gives a new file (mkstemp's own is 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, fill) -> None:
    """Call fill(binary file) on a temporary file, then move it to path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _new_file_mode())
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
    """Append one whole line, then fsync: a kill leaves at most a partial last line, which read_jsonl drops.
    A short write (a full disk, a file-size limit) is continued until the line is written, or raises."""
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        while data:
            n = os.write(fd, data)
            if n <= 0:
                raise OSError(f"{path}: nothing written while appending a line")
            data = data[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path) -> list:
    """The records of a JSON-lines file written by append_line. A damaged line (a partial last line from a
    kill during an append, or a line cut by a failed write before later appends) is dropped with a warning
    naming the file and line, and the file is rewritten without it, so later appends start on a fresh line."""
    import json
    import logging

    path = Path(path)
    if not path.is_file():
        return []
    raw = path.read_bytes()
    records, kept, dropped = [], [], []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
            kept.append(line)
        except ValueError:
            dropped.append(n)
    if dropped:
        logging.getLogger(__name__).warning("%s: dropping %d damaged line(s) (line %s%s; a kill or a failed write "
                                            "during an append)", path, len(dropped), dropped[0],
                                            ", a partial last line" if dropped[-1] == raw.count(b"\n") + 1 else "")
    if dropped or (raw and not raw.endswith(b"\n")):
        atomic_write_bytes(path, b"".join(line + b"\n" for line in kept))
    return records


def record_of(path) -> Path:
    """The size / SHA-256 record of a cache file: <file>.sha256."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def file_matches_record(path) -> bool:
    """The file and its record exist, and the file has the recorded size and SHA-256."""
    from sas.cache import file_digest
    path = Path(path)
    try:
        size, digest = record_of(path).read_text().split()
        return path.stat().st_size == int(size) and file_digest(path) == digest
    except (OSError, ValueError):
        return False


def save_checked(obj, path) -> None:
    """torch.save atomically, then the file's record (size, SHA-256), written after it."""
    import hashlib
    import io

    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_text(record_of(path), f"{len(data)} {hashlib.sha256(data).hexdigest()}\n")


def load_checked(path, **load_kwargs):
    """The object of a cache file written by save_checked, or None so the caller builds it (again): missing,
    or without its record (not finished: another writer may be between its two renames; nothing is said), or
    cut short or changed since (a warning names the file, which is moved aside to <file>.damaged)."""
    import logging

    import torch
    import hashlib
    import io

    path = Path(path)
    if not path.is_file() or not record_of(path).is_file():
        return None
    data = path.read_bytes()                                         # read once: hashed, then loaded
    try:
        size, digest = record_of(path).read_text().split()
        ok = len(data) == int(size) and hashlib.sha256(data).hexdigest() == digest
    except (OSError, ValueError):
        ok = False
    if not ok:
        why = "its size or SHA-256 differ from its record"
    else:
        try:
            return torch.load(io.BytesIO(data), weights_only=True, **load_kwargs)
        except Exception as err:  # recorded but unreadable (written by another version): rebuild too
            why = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
    logging.getLogger(__name__).warning("cache file %s is damaged (%s): set aside as %s.damaged, building it again",
                                        path, why, path.name)
    os.replace(path, path.with_name(path.name + ".damaged"))
    record_of(path).unlink(missing_ok=True)
    return None
