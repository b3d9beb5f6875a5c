"""What identifies an artifact: short hashes of configs, ids of model weights, digests of file contents.

    key = config_key({"pool": ..., "encoder": ...})       # 16 hex characters, stable across runs
    weights_id("facebook/DiT-XL-2-256")                   # {"hub": ..., "commit": ...}: the snapshot it resolves to
    weights_id("/models/minimax-imagewoof")               # {"path": ..., "content": ...}: a local folder by content
    file_digest(path); content_digest(file_or_folder)     # SHA-256 of bytes (a folder: of its files' digests)
    image_seed(seed, label, k)                            # the seed of pool image k of a class (any batch, any size)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sas.hub import is_local as is_local_path

__all__ = ["config_key", "weights_id", "file_digest", "content_digest", "is_local_path", "image_seed"]


KEY_CHARS = 16    # hex characters of a cache key (64 bits)


def config_key(config: dict) -> str:
    """A short, stable hash of a JSON-able config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_CHARS]


def weights_id(name: str | None, revision: str | None = None):
    """What stands for a hub id's or a local path's weights in a cache key: the commit a hub id's revision
    resolves to (sas.hub.resolve), a local file's or folder's content digest (the same bytes under another path
    or time are the same weights; changed bytes under the same path are not)."""
    if name is None:
        return None
    name = str(name)
    if is_local_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"weights not found: {path}")
        return {"path": str(path.resolve()), "content": content_digest(path)}
    from sas.hub import resolve
    return resolve(name, revision).key


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}      # (path, size, mtime_ns) -> digest: a file is hashed once per process


def content_digest(path) -> str:
    """SHA-256 of a file's bytes, or of a folder's sorted (relative path, file digest) list."""
    path = Path(path)
    if path.is_file():
        st = path.stat()
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if memo not in _DIGESTS:
            _DIGESTS[memo] = file_digest(path)
        return _DIGESTS[memo]
    files = sorted(q for q in path.rglob("*") if q.is_file() and not q.name.startswith("."))
    listing = [[q.relative_to(path).as_posix(), content_digest(q)] for q in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def image_seed(seed: int, label: int, k: int) -> int:
    """The seed of image k of class `label`: independent of batch size and pool size."""
    digest = hashlib.sha256(f"sas-pool:{int(seed)}:{int(label)}:{int(k)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
