"""The real training images as a pool: the "Random" / "K-Center" baselines of the paper.

    pool = RealPool()
    files, labels = pool.paths(n_per_class, PoolContext(table, data, cache_dir))   # first n train files, by name

Folder layouts (ImageNet, fastai, folder) use the train files in place, in
name order: with sampler=none this is the original code's "random" subset (the
first files in lexicographic order). Datasets held in memory (digits,
CIFAR-10) are written once as PNGs into the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from sas.data.classes import ClassTable
from sas.data.images import DataError, list_class_files

from sas.pools.base import PoolSource

__all__ = ["RealPool"]


@dataclass
class RealPool(PoolSource):
    def key_config(self) -> dict:
        return {"kind": "real"}

    def paths(self, n_per_class: int | None, ctx) -> tuple[list[str], list[int]]:
        """The first n_per_class train files of each class in name order; None: all of them. ctx: a
        PoolContext (its data: the dataset's RealData; its cache_dir: where in-memory splits are written)."""
        data, table, cache_dir = ctx.data, ctx.table, ctx.cache_dir
        if data.layout in ("imagenet", "fastai", "folder"):
            items = list_class_files(data._split_dir("train"), table, data.follow_symlinks)
            by_class = [[p for p, y in items if y == c] for c in range(len(table))]
        else:
            by_class = self._materialise(data, table, cache_dir)
        files, labels = [], []
        for c, mine in enumerate(by_class):
            n = len(mine) if n_per_class is None else n_per_class
            if len(mine) < n or not mine:
                raise DataError(f"real pool class {c} '{table.names[c]}' has {len(mine)} train images, fewer than "
                                f"the {max(n, 1)} asked for")
            files += mine[:n]
            labels += [c] * n
        return files, labels

    @staticmethod
    def _materialise(data, table: ClassTable, cache_dir) -> list[list[str]]:
        from sas.io import atomic_write_text
        from sas.pools.store import PoolStore

        # keyed by the dataset's settings, so a materialised split is reused without decoding it again
        key = {"kind": "real", "dataset": data.name, "layout": data.layout, "root": data.root,
               "image_size": data.image_size, "seed": data.seed, "table": table.name}
        store = PoolStore.open(cache_dir, key, table)
        marker = store.root / "COMPLETE"
        if marker.is_file():                  # reused: every image must still match its recorded bytes
            counts = [int(x) for x in marker.read_text().split()]
            if store.damaged(max(counts)) or any(not store.has(c, k) for c in range(len(table))
                                                 for k in range(counts[c])):
                marker.unlink()
        if not marker.is_file():
            with store.lock():
                if not marker.is_file():  # another job may have finished it meanwhile
                    train = data.load("train")
                    counters = [0] * len(table)
                    for img, y in zip(train.images, train.labels.tolist()):
                        if not store.has(y, counters[y]):
                            store.write(y, counters[y], img)
                        counters[y] += 1
                    atomic_write_text(marker, "\n".join(map(str, counters)) + "\n")
        counts = [int(x) for x in marker.read_text().split()]
        return [[str(store.path(c, k)) for k in range(counts[c])] for c in range(len(table))]
