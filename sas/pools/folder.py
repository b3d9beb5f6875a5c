"""An existing pool on disk: <root>/<class folder>/<file> images from any method (D4M, MGD3, ...).

    pool = FolderPool(root)
    files, labels = pool.paths(40, PoolContext(table))   # the first 40 files of each class, by name

SAS then works as a plug-in after any generator. Files are taken in name order;
a class folder that is missing, empty, holds too few images, or holds an
unreadable one is an error naming the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sas.data.classes import ClassTable
from sas.data.images import DataError, list_class_files

from sas.pools.base import PoolSource

__all__ = ["FolderPool"]


@dataclass
class FolderPool(PoolSource):
    root: str
    follow_symlinks: bool = False        # accept class folders / images that link outside the root

    def key_config(self) -> dict:
        return {"kind": "folder", "root": str(Path(self.root).resolve())}

    def paths(self, n_per_class: int | None, ctx) -> tuple[list[str], list[int]]:
        """The first n_per_class files of each class in name order (None: all); ctx: a PoolContext."""
        from PIL import Image

        table: ClassTable = ctx.table
        items = list_class_files(Path(self.root), table, self.follow_symlinks)
        files, labels = [], []
        for label in range(len(table)):
            mine = [p for p, y in items if y == label]
            n = len(mine) if n_per_class is None else n_per_class
            if len(mine) < n:
                raise DataError(f"folder pool class {Path(self.root) / table.folders[label]} has {len(mine)}"
                                f" images, fewer than the {n} asked for")
            files += mine[:n]
            labels += [label] * n
        for p in files:                                   # a damaged file is named before any encoding
            try:
                with Image.open(p) as img:
                    img.verify()
            except Exception as err:  # PIL raises many kinds
                raise DataError(f"cannot read pool image {p}: {err}") from None
        return files, labels
