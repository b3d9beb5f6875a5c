"""A content-addressed, resumable store of generated pool images.

    store = PoolStore.open(cache_dir, key_config, table)      # <cache>/pools/<key>/
    store.has(label, k); store.write(label, k, image_uint8); store.paths(n_per_class)

Layout: <root>/<class folder>/<k:06d>.png (image k of the class; its seed comes
from (seed, class, k), so the first n images of a class are the same whatever
pool size was asked for) plus meta.json (the config that made them). Each PNG
is written to a temporary name and moved into place: a file that exists is
complete. `lock()` serialises writers of the same pool across processes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from sas.data.classes import ClassTable
from sas.io import atomic_write_bytes

__all__ = ["PoolStore", "config_key", "image_seed", "weights_id"]


def config_key(config: dict, length: int = 16) -> str:
    """A short, stable hash of a JSON-able config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


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


def image_seed(seed: int, label: int, k: int) -> int:
    """The seed of image k of class `label`: independent of batch size and pool size."""
    digest = hashlib.sha256(f"sas-pool:{int(seed)}:{int(label)}:{int(k)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class PoolStore:
    def __init__(self, root: Path, table: ClassTable):
        self.root, self.table = Path(root), table

    @classmethod
    def open(cls, cache_dir, key_config: dict, table: ClassTable) -> "PoolStore":
        root = Path(cache_dir) / "pools" / config_key(key_config)
        root.mkdir(parents=True, exist_ok=True)
        meta = root / "meta.json"
        if not meta.exists():
            atomic_write_bytes(meta, json.dumps(key_config, indent=1, sort_keys=True, default=str).encode())
        return cls(root, table)

    def path(self, label: int, k: int) -> Path:
        return self.root / self.table.folders[label] / f"{k:06d}.png"

    def has(self, label: int, k: int) -> bool:
        return self.path(label, k).is_file()

    def missing(self, n_per_class: int) -> list[tuple[int, int]]:
        """(label, k) of every image of the first n_per_class per class not yet written."""
        return [(c, k) for c in range(len(self.table)) for k in range(n_per_class) if not self.has(c, k)]

    def write(self, label: int, k: int, image: torch.Tensor) -> Path:
        """Save a (3, H, W) uint8 image atomically as PNG."""
        from io import BytesIO

        from PIL import Image

        path = self.path(label, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = BytesIO()
        Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue())
        return path

    def paths(self, n_per_class: int) -> tuple[list[str], list[int]]:
        """Files and labels of the first n_per_class images of each class (all must exist)."""
        missing = self.missing(n_per_class)
        if missing:
            c, k = missing[0]
            raise FileNotFoundError(f"pool {self.root} lacks {len(missing)} images, first {self.path(c, k)}")
        files = [str(self.path(c, k)) for c in range(len(self.table)) for k in range(n_per_class)]
        return files, [c for c in range(len(self.table)) for _ in range(n_per_class)]

    def lock(self, timeout: float = -1):
        """An inter-process lock on this pool (filelock)."""
        from filelock import FileLock
        return FileLock(str(self.root / ".lock"), timeout=timeout)
