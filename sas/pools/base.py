"""Pool sources and the generation loop shared by all of them.

    source = DiTSource(...)                       # or DDPMSource, ...
    store = generate_pool(source, table, n_per_class=40, seed=0, cache_dir=...)
    files, labels = store.paths(40)
    files, labels = source.paths(40, PoolContext(table, cache_dir=..., seed=0))   # the same, as every pool kind

A source turns class labels and one torch Generator per image into uint8
images; the loop finds what the store lacks, draws it in batches, and writes
each image atomically as it comes (PNG encoding in background threads), under
a lock, with a progress bar. Because every random draw of an image comes from
its own generator, seeded from (seed, class, k), a pool is the same whatever
the batch size, n_per_class = 3 x IPC is a prefix of 5 x IPC, and a killed run
resumes where it stopped.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from sas.data.classes import ClassTable
from sas.pools.store import PoolStore, image_seed

log = logging.getLogger(__name__)

__all__ = ["PoolSource", "PoolContext", "GeneratedPool", "generate_pool", "pool_key"]


@dataclass
class PoolContext:
    """What any pool needs to list its images: every pool kind implements
    paths(n_per_class, ctx) -> (files, labels), the first n_per_class images of each class in pool order
    (None: all of them, where a pool has a fixed set)."""

    table: ClassTable
    data: object = None             # the dataset's RealData (real pools read its train split)
    cache_dir: object = None        # the shared cache (generated pools, materialised real splits)
    seed: int = 0                   # the pool seed (generated pools)
    progress: bool = True


class GeneratedPool:
    """For PoolSources: paths() draws what the store lacks (generate_pool), then lists the pool."""

    def paths(self, n_per_class: int | None, ctx: PoolContext) -> tuple[list[str], list[int]]:
        if n_per_class is None:
            raise ValueError("a generated pool has no fixed size: give sampler.pool_mult (pool_mult=null is for "
                             "pool=real)")
        store = generate_pool(self, ctx.table, n_per_class, ctx.seed, ctx.cache_dir, progress=ctx.progress)
        return store.paths(n_per_class)


@runtime_checkable
class PoolSource(Protocol):
    def key_config(self) -> dict:
        """The settings that decide the images (weights id, steps, guidance, ...)."""

    def check(self, table: ClassTable) -> None:
        """Raise a clear error for labels the model cannot make, before any sampling."""

    def sample(self, labels: list[int], generators: list[torch.Generator]) -> torch.Tensor:
        """Images (B, 3, H, W) uint8 for dataset labels, one generator per image."""

    def batch_size(self) -> int:
        """Images per batch on this source's device."""


def pool_key(source: PoolSource, table: ClassTable, seed: int) -> dict:
    """What identifies a pool: generator settings, the classes, the seed (not the pool size)."""
    return {"generator": source.key_config(), "classes": list(table.folders), "dataset": table.name,
            "seed": int(seed)}


def generate_pool(source: PoolSource, table: ClassTable, n_per_class: int, seed: int, cache_dir,
                  batch_size: int | None = None, progress: bool = True, writers: int = 8) -> PoolStore:
    """Make sure the first n_per_class images of every class exist in the cache; return the store."""
    from tqdm.auto import tqdm

    source.check(table)
    store = PoolStore.open(cache_dir, pool_key(source, table, seed), table)
    if not store.missing(n_per_class) and not store.damaged(n_per_class):   # every reuse re-checks the bytes
        return store
    with store.lock():
        store.damaged(n_per_class)
        todo = store.missing(n_per_class)  # again: another process may have filled it meanwhile
        bs = batch_size or source.batch_size()
        bar = tqdm(total=len(todo), desc=f"pool {store.root.name}", unit="img", disable=not progress)
        with ThreadPoolExecutor(writers) as pool:
            pending = []
            pad = bool(getattr(source, "compile", False))      # compiled: every batch the same shape
            for start in range(0, len(todo), bs):
                chunk = todo[start:start + bs]
                gens = [torch.Generator().manual_seed(image_seed(seed, c, k)) for c, k in chunk]
                labels = [c for c, _ in chunk]
                if pad and len(chunk) < bs:                      # pad the last batch (fresh generators: the
                    extra = bs - len(chunk)                      # real images' draws are untouched)
                    labels += [labels[0]] * extra
                    gens += [torch.Generator().manual_seed(i) for i in range(extra)]
                images = source.sample(labels, gens)[:len(chunk)].cpu()      # (B, 3, H, W) uint8
                pending += [pool.submit(store.write, c, k, img) for (c, k), img in zip(chunk, images)]
                for f in [f for f in pending if f.done()]:
                    f.result()
                    pending.remove(f)
                    bar.update(1)
            for f in pending:
                f.result()
                bar.update(1)
        bar.close()
    return store
