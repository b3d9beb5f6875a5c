"""Pool sources and the generation loop shared by all of them.

    source = DiTSource(...)                       # or DDPMSource, ...
    store = generate_pool(source, table, n_per_class=40, seed=0, cache_dir=...)
    files, labels = store.paths(40)
    files, labels = source.paths(40, PoolContext(table, cache_dir=..., seed=0))   # the same, as every pool kind

A source turns class labels and one torch Generator per image into uint8
images; the loop finds what the store lacks, draws it in batches, and writes
each image atomically as it comes (PNG encoding in background threads), with a
progress bar. Because every random draw of an image comes from its own
generator, seeded from (seed, class, k), a pool is the same whatever the batch
size, n_per_class = 3 x IPC is a prefix of 5 x IPC, a killed run resumes where
it stopped, and the work splits over processes and jobs without a lock: each
takes its shard (sas.shards) of the (class, k) items, and the pool is the same
whatever the split (batched kernels may round a pixel one grey level apart when
an image shares its batch with other images than before).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import torch

from sas.data.classes import ClassTable
from sas.cache import image_seed
from sas.pools.store import PoolStore
from sas.shards import Shard, barrier, rank_world

log = logging.getLogger(__name__)

__all__ = ["PoolSource", "PoolContext", "PoolIncomplete", "GeneratedPool", "generate_pool", "pool_key", "list_pool"]


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
    shard: int = 0                  # this job's shard of the pool's images (pool.shard of pool.num_shards
    num_shards: int = 1             # independent jobs; times the torch.distributed rank / world, sas.shards)


def list_pool(pool, n_per_class: int | None, ctx: PoolContext):
    """The pool stage: any pool kind (generated, trained first, folder, real) -> sas.artifacts.Pool of its first
    n_per_class images per class (drawn first where they are missing)."""
    from sas.artifacts import Pool
    files, labels = pool.paths(n_per_class, ctx)
    return Pool(tuple(files), tuple(labels), ctx.table)


class PoolIncomplete(RuntimeError):
    """A shard job drew its shard; other shards still lack images (their jobs have not finished)."""


class PoolSource:
    """What a pool is made from; the config group pool.source builds only subclasses. Every source lists its
    pool (paths) and says what decides its images (key_config); generated sources (GeneratedPool) also check
    the labels, sample and size their batches."""

    def key_config(self) -> dict:
        """The settings that decide the images (weights id, steps, guidance, ...)."""
        raise NotImplementedError

    def paths(self, n_per_class: int | None, ctx: "PoolContext") -> tuple[list[str], list[int]]:
        """The pool's files and labels in pool order (drawn first where missing)."""
        raise NotImplementedError


class GeneratedPool(PoolSource):
    """Sources that draw their images (check, sample, batch_size): paths() draws what the store lacks (generate_pool), then lists the pool; key_config()
    is derived from the source's own fields: every field that decides the images, the weights as
    weights_key() resolves them (hub commits, file contents), the device type and the resolved dtype."""

    KIND: ClassVar[str] = ""
    WEIGHT_FIELDS: ClassVar[tuple] = ()      # fields weights_key() stands for (ids, revisions, configs, init seed)
    RUNTIME_FIELDS: ClassVar[tuple] = ("device", "dtype", "batch")   # how it runs, not which images (dtype: resolved)

    def weights_key(self) -> dict:
        raise NotImplementedError

    def device_dtype(self) -> tuple[torch.device, torch.dtype]:
        from sas.devices import resolve_device_dtype
        return resolve_device_dtype(self.device, self.dtype)

    def key_config(self) -> dict:
        from dataclasses import fields
        dev, dt = self.device_dtype()
        skip = set(self.WEIGHT_FIELDS) | set(self.RUNTIME_FIELDS)
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name not in skip}
        return {"kind": self.KIND, **self.weights_key(), **own, "device_type": dev.type, "dtype": str(dt)}

    def paths(self, n_per_class: int | None, ctx: PoolContext) -> tuple[list[str], list[int]]:
        if n_per_class is None:
            raise ValueError("a generated pool has no fixed size: give sampler.pool_mult (pool_mult=null is for "
                             "pool=real)")
        shard = Shard.current(ctx.shard, ctx.num_shards)
        rank, _ = rank_world()
        store = generate_pool(self, ctx.table, n_per_class, ctx.seed, ctx.cache_dir,
                              progress=ctx.progress and rank == 0, shard=shard)
        barrier()                                                  # every rank's shard is written
        missing = [] if shard.whole else store.missing(n_per_class)          # (store.paths checks a whole pool)
        if missing:
            raise PoolIncomplete(f"pool {store.root}: {shard} is complete; {len(missing)} images of other shards "
                                 f"are still missing (their pool.shard jobs have not finished)")
        return store.paths(n_per_class)


def pool_key(source: PoolSource, table: ClassTable, seed: int) -> dict:
    """What identifies a pool: generator settings, the classes, the seed (not the pool size)."""
    return {"generator": source.key_config(), "classes": list(table.folders), "dataset": table.name,
            "seed": int(seed)}


def generate_pool(source: PoolSource, table: ClassTable, n_per_class: int, seed: int, cache_dir,
                  batch_size: int | None = None, progress: bool = True, writers: int = 8,
                  shard: Shard | None = None) -> PoolStore:
    """Make sure the first n_per_class images of every class of this process's shard exist in the cache
    (all of them by default); return the store. A shard of several (shard jobs, torch.distributed ranks)
    holds no lock: many writers fill one pool at once, each image is written atomically by the shard that
    owns it, and a crashed shard's images are missing, so the next run with that shard (or a whole run) draws
    them. A whole-pool writer (one process) takes the pool's lock, so jobs of a sweep that need the same pool
    draw it once: the others wait, then find it complete."""
    import contextlib

    shard = shard or Shard()
    store = PoolStore.open(cache_dir, pool_key(source, table, seed), table)    # the key needs no weights loaded
    if not store.missing(n_per_class, shard.owns) and not store.damaged(n_per_class, shard.owns):
        return store                         # complete (every reuse re-checks the bytes): the model never loads
    source.check(table)
    with store.lock() if shard.whole else contextlib.nullcontext():
        store.damaged(n_per_class, shard.owns)
        todo = store.missing(n_per_class, shard.owns)              # again: another writer may have filled it
        if todo:
            _draw(source, store, todo, seed, batch_size, progress, writers, shard)
    return store


def _draw(source, store: PoolStore, todo: list, seed: int, batch_size, progress: bool, writers: int,
          shard: Shard) -> None:
    from tqdm.auto import tqdm

    bs = batch_size or source.batch_size()
    name = store.root.name if shard.whole else f"{store.root.name} ({shard})"
    bar = tqdm(total=len(todo), desc=f"pool {name}", unit="img", disable=not progress, dynamic_ncols=True)
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
