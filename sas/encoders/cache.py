"""Pool embeddings cached on disk per (pool, encoder), and class prototypes.

    feats = encode_pool(encoder, files, key={...}, cache_dir=...)   # (N, d); encodes only what is new
    protos = visual_prototypes(encoder, real_train, num_classes)   # (C, d) mean embedding per class

The cache file <cache>/embeddings/<key>.pt maps each file to its row. Pools
nest (pool_mult 3 is a prefix of 5), so a larger pool encodes only its extra
images; the file is rewritten atomically after each addition.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sas.io import atomic_torch_save
from sas.pools.store import config_key

__all__ = ["encode_pool", "embeddings_path", "visual_prototypes", "prototypes_for"]


def encode_pool(encoder, files: list[str], key: dict, cache_dir, progress: bool = False) -> torch.Tensor:
    from filelock import FileLock

    path = embeddings_path(key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # concurrent jobs on one pool: one encodes, the others read
        return _encode_locked(encoder, files, key, path, progress)


def embeddings_path(key: dict, cache_dir) -> Path:
    return Path(cache_dir) / "embeddings" / f"{config_key(key)}.pt"


def _encode_locked(encoder, files, key, path: Path, progress: bool) -> torch.Tensor:
    cached = torch.load(path, weights_only=True) if path.is_file() else {"files": [], "features": None}
    index = {f: i for i, f in enumerate(cached["files"])}
    todo = [f for f in files if f not in index]
    if todo:
        new = encoder.encode_files(todo, progress=progress)                     # (len(todo), d)
        feats = new if cached["features"] is None else torch.cat([cached["features"], new])
        cached = {"files": cached["files"] + todo, "features": feats, "key": key}
        atomic_torch_save(cached, path)
        index = {f: i for i, f in enumerate(cached["files"])}
    return cached["features"][torch.tensor([index[f] for f in files], dtype=torch.long)]


def visual_prototypes(encoder, real, num_classes: int) -> torch.Tensor:
    """Mean normalised embedding of the real images of each class -> (C, d)."""
    feats = encoder.encode_tensors(real.images)                                  # (M, d)
    protos = torch.zeros(num_classes, feats.shape[1]).index_add_(0, real.labels, feats)
    counts = torch.bincount(real.labels, minlength=num_classes).clamp_min(1)
    return protos / counts[:, None]


def prototypes_for(encoder, table, real_train_loader) -> torch.Tensor | None:
    """Text prototypes from class names, visual ones from the real training images (loaded lazily), or
    None for an encoder without prototypes (samplers that need them then say so)."""
    if encoder.prototypes == "none":
        return None
    if encoder.prototypes == "text":
        return encoder.text_prototypes(list(table.names))
    return visual_prototypes(encoder, real_train_loader(), len(table))
