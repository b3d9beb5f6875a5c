"""What identifies an artifact: short hashes of configs, ids of model weights, digests of file contents.

    key = config_key({"pool": ..., "encoder": ...})     # 16 hex characters, stable across runs
    weights_id("facebook/DiT-XL-2-256")                 # a hub id as given; a local file / folder by path,
                                                        # size and modification time
    file_digest(path)                                   # SHA-256 of a file's bytes
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["config_key", "weights_id", "file_digest", "is_local_path"]


KEY_CHARS = 16    # hex characters of a cache key (64 bits)


def config_key(config: dict) -> str:
    """A short, stable hash of a JSON-able config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_CHARS]


def is_local_path(name: str) -> bool:
    """A filesystem path rather than a hub id ("facebook/DiT-XL-2-256")."""
    import os
    return name.startswith(("/", ".", "~")) or os.sep + os.sep in name or Path(name).expanduser().exists()


def weights_id(name: str | None):
    """What stands for a model's weights in a cache key: a local file's path, size and time; a local
    folder's file list with sizes and times; anything else (a hub id, a pretrained tag) as given."""
    if name is None:
        return None
    p = Path(name)
    if p.is_file():
        st = p.stat()
        return {"path": str(p.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        return {"path": str(p.resolve()), "files": [[str(q.relative_to(p)), q.stat().st_size,
                                                      int(q.stat().st_mtime)] for q in files]}
    return name


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
