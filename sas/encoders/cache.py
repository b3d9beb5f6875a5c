"""Pool embeddings cached on disk per (pool, encoder), and class prototypes.

    feats = encode_pool(encoder, files, key={...}, cache_dir=...)   # (N, d); encodes only what is new
    protos = visual_prototypes(encoder, real_train, num_classes)   # (C, d) mean embedding per class

The cache file <cache>/embeddings/<key>.pt maps each file to its row and
records the file's size, modification time and SHA-256. A file whose size or
time changed is hashed again and, when its content changed, re-encoded (the log
says how many were): replacing a folder pool's images under the same names
never reuses stale embeddings. Pools nest (pool_mult 3 is a prefix of 5), so a
larger pool encodes only its extra images; the file is rewritten atomically
after each addition. A damaged cache file is reported and rebuilt.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from sas.cache import config_key, file_digest
from sas.io import atomic_torch_save, file_matches_record, load_checked, record_of, save_checked
from sas.shards import Shard

log = logging.getLogger(__name__)

__all__ = ["encode_pool", "encode_stage", "embeddings_path", "cached_embeddings", "visual_prototypes",
           "prototypes_for", "needs_real_train", "EncodingIncomplete", "real_embeddings", "pool_key"]


def encode_pool(encoder, files: list[str], key: dict, cache_dir, progress: bool = False,
                shard: Shard | None = None) -> torch.Tensor:
    """(N, d) embeddings of `files` in their order. With a shard of several (sas.shards), this process
    encodes only its share of the new files into a part file; whoever finds every part present (rank 0 after
    the barrier, or the last of M jobs) assembles the cache file, the same file one process writes."""
    from filelock import FileLock

    shard = shard or Shard()
    path = embeddings_path(key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if shard.whole:
        with FileLock(str(path) + ".lock"):  # concurrent jobs on one pool: one encodes, the others read
            return _encode_locked(encoder, files, key, path, progress)
    return _encode_sharded(encoder, files, key, path, progress, shard)


def embeddings_path(key: dict, cache_dir) -> Path:
    return Path(cache_dir) / "embeddings" / f"{config_key(key)}.pt"


def _stamp(path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _load_cache(path: Path) -> dict:
    empty = {"files": [], "features": None, "stamps": [], "digests": []}
    if not path.is_file():
        return empty
    try:
        cached = torch.load(path, weights_only=True)
        if not isinstance(cached, dict) or len(cached["files"]) != len(cached.get("digests", ())):
            raise ValueError("not an embeddings file of this version")
        return cached
    except Exception as err:  # a truncated zip, a bad pickle, an old layout: rebuild
        log.warning("embeddings cache %s is damaged or outdated (%s): re-encoding", path,
                    str(err).splitlines()[0][:160] if str(err) else type(err).__name__)
        return empty


def _refresh(cached: dict, files: list[str]) -> tuple[dict, list[str], bool]:
    """The cache without rows whose file content changed, the files still to encode (in pool order), and
    whether a touched-but-unchanged file's stamp was refreshed."""
    index = {f: i for i, f in enumerate(cached["files"])}
    stale, touched = [], False                                   # rows whose file content changed
    for f in files:
        i = index.get(f)
        if i is None:
            continue
        stamp = _stamp(f)
        if stamp == list(cached["stamps"][i]):
            continue
        if file_digest(f) == cached["digests"][i]:
            cached["stamps"][i], touched = stamp, True           # touched, same bytes: not hashed again
        else:
            stale.append(i)
    if stale:
        log.warning("%d pool file(s) changed since they were encoded (e.g. %s): re-encoding them", len(stale),
                    cached["files"][stale[0]])
        gone = set(stale)
        keep = [i for i in range(len(cached["files"])) if i not in gone]
        cached = {"files": [cached["files"][i] for i in keep], "features": cached["features"][keep] if keep else None,
                  "stamps": [cached["stamps"][i] for i in keep], "digests": [cached["digests"][i] for i in keep]}
        index = {f: i for i, f in enumerate(cached["files"])}
    todo = list(dict.fromkeys(f for f in files if f not in index))
    return cached, todo, bool(stale) or touched


def _encode_locked(encoder, files, key, path: Path, progress: bool) -> torch.Tensor:
    cached, todo, changed = _refresh(_load_cache(path), files)
    if todo:
        cached = _appended(cached, key, todo, encoder.encode_files(todo, progress=progress),
                           [_stamp(f) for f in todo], [file_digest(f) for f in todo])
    if todo or changed:
        atomic_torch_save(cached, path)
    return _rows(cached, files)


def _appended(cached: dict, key: dict, files: list[str], feats: torch.Tensor, stamps: list, digests: list) -> dict:
    """The cache with rows for new files added at its end (feats: (len(files), d))."""
    return {"files": cached["files"] + files, "key": key,
            "features": feats if cached["features"] is None else torch.cat([cached["features"], feats]),
            "stamps": [list(x) for x in cached["stamps"]] + [list(x) for x in stamps],
            "digests": list(cached["digests"]) + list(digests)}


def cached_embeddings(path, files: list[str]) -> torch.Tensor:
    """(N, d) rows of an embeddings cache file for these files (a run's results.json names the file)."""
    cached = _load_cache(Path(path))
    missing = [f for f in files if f not in set(cached["files"])]
    if missing:
        raise KeyError(f"embeddings {path} has no row for {len(missing)} file(s), e.g. {missing[0]}")
    return _rows(cached, files)


def _rows(cached: dict, files: list[str]) -> torch.Tensor:
    index = {f: i for i, f in enumerate(cached["files"])}
    return cached["features"][torch.tensor([index[f] for f in files], dtype=torch.long)]


class EncodingIncomplete(RuntimeError):
    """A shard job encoded its shard; other shards' parts are not written yet."""


def _encode_sharded(encoder, files, key, path: Path, progress: bool, shard: Shard) -> torch.Tensor:
    from filelock import FileLock

    from sas.shards import barrier

    _, todo, _ = _refresh(_load_cache(path), files)
    tag = config_key({"todo": todo, "count": shard.count})          # parts of this very split only
    part = lambda i: path.with_name(f"{path.stem}.part-{tag}-{i}-of-{shard.count}.pt")   # noqa: E731
    mine = todo[shard.index::shard.count]
    if mine and not file_matches_record(part(shard.index)):          # a damaged part of its own: encoded again
        save_checked({"files": mine, "features": encoder.encode_files(mine, progress=progress),
                      "stamps": [_stamp(f) for f in mine], "digests": [file_digest(f) for f in mine]},
                     part(shard.index))
    barrier()                                                         # every rank's part is on disk
    with FileLock(str(path) + ".lock"):
        cached, todo_now, changed = _refresh(_load_cache(path), files)
        if todo_now:
            owners = sorted({j % shard.count for j in range(len(todo))})    # the shards with files to encode
            got = {i: load_checked(part(i)) for i in owners}          # a damaged part: named, set aside
            missing = [i for i in owners if got[i] is None]
            if missing:
                raise EncodingIncomplete(f"embeddings {path.name}: {shard} is encoded; the parts of "
                                         f"{len(missing)} other shard(s) are not written yet or were damaged "
                                         f"(shard {missing[0]}: {part(missing[0]).name}); their jobs write them "
                                         "(rerun one that failed)")
            rows = {}
            for part_rows in got.values():
                rows.update({f: (part_rows["features"][j], part_rows["stamps"][j], part_rows["digests"][j])
                             for j, f in enumerate(part_rows["files"])})
            cached = _appended(cached, key, todo_now, torch.stack([rows[f][0] for f in todo_now]),   # (n, d)
                               [rows[f][1] for f in todo_now], [rows[f][2] for f in todo_now])
            atomic_torch_save(cached, path)
            for i in owners:
                part(i).unlink(missing_ok=True)
                record_of(part(i)).unlink(missing_ok=True)
        elif changed:
            atomic_torch_save(cached, path)
    barrier()
    return _rows(cached, files)


def visual_prototypes(encoder, real, num_classes: int, batch_size: int = 1024) -> torch.Tensor:
    """Mean normalised embedding of the real images of each class -> (C, d); real: a resident ImageSet or a
    streamed split (sas.data.stream), read batch by batch either way."""
    from sas.data.stream import iter_batches

    protos = None
    for images, labels in iter_batches(real, batch_size):
        feats = encoder.encode_tensors(images).float()                           # (B, d)
        protos = torch.zeros(num_classes, feats.shape[1]) if protos is None else protos
        protos.index_add_(0, labels, feats)
    counts = torch.bincount(real.labels, minlength=num_classes).clamp_min(1)
    return protos / counts[:, None]


def needs_real_train(encoder) -> bool:
    """Visual prototypes and the domain encoder read the real train split."""
    from sas.encoders.domain import DomainEncoder
    return isinstance(encoder, DomainEncoder) or getattr(encoder, "prototypes", "text") == "visual"


def pool_key(files, encoder) -> dict:
    """The embeddings cache key of a pool's files under an encoder: the pool's folder (files sit in
    <pool>/<class>/) and the encoder's key_config."""
    return {"pool": [str(Path(files[0]).parent.parent)], "encoder": encoder.key_config()}


def encode_stage(encoder, pool, context, progress: bool = True, shard: Shard | None = None):
    """The encode stage: a Pool (sas.artifacts) -> EncodedPool: the pool's embeddings, cached per (pool folder,
    encoder) in context.cache_dir and encoded only where new; the class prototypes (text or visual); a domain
    encoder is trained on the real train split first (cached). context: sas.evaluation.protocol.EvalContext
    (its real_train() reads the split on first call)."""
    from sas.artifacts import EncodedPool
    from sas.encoders.domain import DomainEncoder
    from sas.shards import rank_world

    if isinstance(encoder, DomainEncoder):
        encoder.fit(context, progress=progress)
    key = pool_key(pool.files, encoder)
    feats = encode_pool(encoder, list(pool.files), key, context.cache_dir,
                        progress=progress and rank_world()[0] == 0, shard=shard)       # (N, d)
    protos = prototypes_for(encoder, pool.classes, context.real_train)                  # (C, d)
    return EncodedPool(pool, feats.to(torch.float32), None if protos is None else protos.to(torch.float32),
                       str(embeddings_path(key, context.cache_dir)))


def prototypes_for(encoder, table, real_train_loader) -> torch.Tensor | None:
    """Text prototypes from class names, visual ones from the real training images (loaded lazily), or
    None for an encoder without prototypes (samplers that need them then say so)."""
    if encoder.prototypes == "none":
        return None
    if encoder.prototypes == "text":
        return encoder.text_prototypes(list(table.names))
    return visual_prototypes(encoder, real_train_loader(), len(table))


def real_embeddings(encoder, real, cache_dir, data_key: dict, per_class: int | None = None):
    """(features (M, d), labels (M,)) of the real split `real` (resident or streamed) under the encoder, the
    first per_class images of each class (None: all); cached in <cache>/embeddings/real/<key>.pt with its
    record (sas.io.save_checked): encoded once per (data, encoder, per_class)."""
    import json
    from dataclasses import replace

    from sas.artifacts import class_ranks
    from sas.data.stream import iter_batches

    key = json.loads(json.dumps({"real": data_key, "encoder": encoder.key_config(), "per_class": per_class},
                                default=str))
    path = Path(cache_dir) / "embeddings" / "real" / f"{config_key(key)}.pt"
    cached = load_checked(path)
    if cached is not None:
        return cached["features"], cached["labels"]
    labels = real.labels
    if per_class is not None:                                   # the first per_class of each class, in order
        rank = torch.tensor(class_ranks(labels.tolist()))
        keep = torch.nonzero(rank < per_class).flatten()
        real = replace(real, files=[real.files[i] for i in keep.tolist()], labels=labels[keep]) if \
            getattr(real, "streamed", False) else replace(real, images=real.images[keep], labels=labels[keep],
                                                           files=[real.files[i] for i in keep.tolist()]
                                                           if real.files else [])
    feats = torch.cat([encoder.encode_tensors(x).float() for x, _ in iter_batches(real, 512)])   # (M, d)
    save_checked({"features": feats, "labels": real.labels.clone(), "key": key}, path)
    return feats, real.labels.clone()
