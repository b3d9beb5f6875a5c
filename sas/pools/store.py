"""A content-addressed, resumable store of generated pool images.

    store = PoolStore.open(cache_dir, key_config, table)      # <cache>/pools/<key>/
    store.has(label, k); store.write(label, k, image_uint8); store.paths(n_per_class)

Layout: <root>/<class folder>/<k:06d>.png (image k of the class; its seed comes
from (seed, class, k), so the first n images of a class are the same whatever
pool size was asked for), beside it <k:06d>.sha256 (the PNG's size and
SHA-256, written after the PNG), plus meta.json (the config that made them).
Each file is written to a temporary name and moved into place. An image counts
as present only when its record exists and the size matches; `damaged()`
re-hashes them, and generation deletes and redraws any that fail (a truncated
or emptied PNG is never trusted). Many writers may fill one pool at once
(sas.shards stripes); two that draw the same image write the same bytes.
`lock()` serialises the one-off materialisation of a real split.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from sas.data.classes import ClassTable
from sas.cache import config_key
from sas.io import atomic_write_bytes

__all__ = ["PoolStore"]


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

    def record_path(self, label: int, k: int) -> Path:
        return self.path(label, k).with_suffix(".sha256")

    def _record(self, label: int, k: int) -> tuple[int, str] | None:
        try:
            size, digest = self.record_path(label, k).read_text().split()
            return int(size), digest
        except (OSError, ValueError):
            return None

    def has(self, label: int, k: int) -> bool:
        """The image and its record exist and the file has the recorded size."""
        rec, path = self._record(label, k), self.path(label, k)
        return rec is not None and path.is_file() and path.stat().st_size == rec[0]

    def item_index(self, label: int, k: int) -> int:
        """The work-item number of image k of a class (k-major, so every stripe spreads over the classes)."""
        return k * len(self.table) + label

    def damaged(self, n_per_class: int, owns=None) -> list[tuple[int, int]]:
        """(label, k) of every recorded image of the first n_per_class whose bytes no longer match their
        recorded SHA-256 (or size); their files are deleted, so they count as missing and are redrawn.
        owns(item_index) -> bool limits the check to one writer's stripe. A PNG without its record is not
        touched here (another writer may be between the two renames): it counts as missing and is rewritten."""
        import logging

        from sas.cache import file_digest

        bad = []
        for c in range(len(self.table)):
            for k in range(n_per_class):
                if owns is not None and not owns(self.item_index(c, k)):
                    continue
                rec, path = self._record(c, k), self.path(c, k)
                if rec is not None and (
                        not path.is_file() or path.stat().st_size != rec[0] or file_digest(path) != rec[1]):
                    bad.append((c, k))
                    logging.getLogger(__name__).warning("pool image %s is damaged or unrecorded: redrawing it", path)
                    path.unlink(missing_ok=True)
                    self.record_path(c, k).unlink(missing_ok=True)
        return bad

    def missing(self, n_per_class: int, owns=None) -> list[tuple[int, int]]:
        """(label, k) of every image of the first n_per_class per class not yet written (of one stripe:
        owns(item_index) -> bool)."""
        return [(c, k) for c in range(len(self.table)) for k in range(n_per_class)
                if (owns is None or owns(self.item_index(c, k))) and not self.has(c, k)]

    def write(self, label: int, k: int, image: torch.Tensor) -> Path:
        """Save a (3, H, W) uint8 image atomically as PNG."""
        from io import BytesIO

        from PIL import Image

        path = self.path(label, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = BytesIO()
        Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).save(buf, format="PNG")
        data = buf.getvalue()
        atomic_write_bytes(path, data)
        atomic_write_bytes(self.record_path(label, k), f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode())
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
