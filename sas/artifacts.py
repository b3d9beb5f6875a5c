"""What the stages of a distill run hand each other: one small frozen object per stage, named after what it is.

    pool = Pool(files, labels, classes)                     # pool stage: every pool kind lists its images
    encoded = EncodedPool(pool, features, prototypes, path)  # encode stage: (N, d) features, (C, d) prototypes
    picked = encoded.first(pool_mult * ipc).select(name, sampler)   # select stage -> PoolSelection
    distilled = folder.write(picked)                        # write stage (sas.run_folder) -> DistilledSet
    evaluation = evaluate_set(...)                          # evaluate stage (sas.evaluation.protocol) -> Evaluation

Nothing here imports the rest of the package: every stage can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["Pool", "EncodedPool", "PoolSelection", "DistilledSet", "Evaluation", "class_ranks"]


def class_ranks(labels) -> list[int]:
    """Each item's position among the items of its class, in order (labels: ints)."""
    seen: dict[int, int] = {}
    out = []
    for y in labels:
        out.append(seen.get(y, 0))
        seen[y] = out[-1] + 1
    return out


@dataclass(frozen=True)
class Pool:
    """A pool's images in pool order (class by class, the images of a class in their order) and their labels."""

    files: tuple[str, ...]
    labels: tuple[int, ...]
    classes: object                          # the dataset's ClassTable

    def __post_init__(self):
        if len(self.files) != len(self.labels):
            raise ValueError(f"a pool needs one label per file: {len(self.files)} files, {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.files)

    def ranks(self) -> list[int]:
        """Each image's position among the images of its class."""
        return class_ranks(self.labels)

    def first_indices(self, n_per_class: int | None) -> list[int]:
        """Pool indices of the first n_per_class images of each class (None: all)."""
        if n_per_class is None:
            return list(range(len(self)))
        return [i for i, r in enumerate(self.ranks()) if r < n_per_class]


@dataclass(frozen=True)
class EncodedPool:
    """A pool with its embeddings (N, d) and the class prototypes (C, d) (None: an encoder without any)."""

    pool: Pool
    features: torch.Tensor
    prototypes: torch.Tensor | None
    path: str                                # the embeddings cache file

    def first(self, n_per_class: int | None) -> "EncodedPool":
        """The pool made of the first n_per_class images of each class (pools nest: 3 x IPC is a prefix of 5)."""
        keep = self.pool.first_indices(n_per_class)
        if len(keep) == len(self.pool):
            return self
        sub = Pool(tuple(self.pool.files[i] for i in keep), tuple(self.pool.labels[i] for i in keep),
                   self.pool.classes)
        return EncodedPool(sub, self.features[keep], self.prototypes, self.path)

    def select(self, name: str, sampler, extras: dict | None = None) -> "PoolSelection":
        """The select stage: `sampler` (sas.sampling.Sampler) on this pool; extras: the inputs it `needs`
        (sas.encoders.extras), per-image ones (N,) also recorded."""
        chosen = sampler(self.features, torch.tensor(self.pool.labels), self.prototypes,
                         num_classes=len(self.pool.classes), extras=extras)
        record = {k: v.tolist() for k, v in chosen.record().items()}
        record.update({k: torch.as_tensor(v).tolist() for k, v in (extras or {}).items()
                       if torch.as_tensor(v).shape == (len(self.pool),)})
        return PoolSelection(name, sampler.config(), self, tuple(chosen.indices.tolist()), record)


@dataclass(frozen=True)
class PoolSelection:
    """What one sampler chose from a pool: the selected pool indices and the per-image record (scores,
    candidate, selected; each a list in pool order)."""

    name: str                                # the sampler's choice name (sas, random, mixed_005, ...)
    sampler: dict                            # its settings
    encoded: EncodedPool                     # the pool it chose from
    indices: tuple[int, ...]
    record: dict = field(repr=False)

    @property
    def ipc(self) -> int:
        return int(self.sampler["ipc"])


@dataclass(frozen=True)
class DistilledSet:
    """A distilled set on disk: <path>/<class folder>/<file> and <path>/manifest.jsonl (sas.data.distilled)."""

    path: Path
    selection: PoolSelection | None = None   # what it holds, when the run wrote it
    repeats_log: Path | None = None          # where finished evaluation repeats of this set are appended

    @property
    def manifest(self) -> Path:
        return Path(self.path) / "manifest.jsonl"


@dataclass(frozen=True)
class Evaluation:
    """A distilled set trained on under a protocol, repeat by repeat: per repeat best and last top-1 (fractions)
    and the curve, then mean and population std; plus what was trained on and evaluated against."""

    repeats: list
    model: dict
    protocol: dict
    epochs: int
    eval_every: int
    train_images: int
    train_source: str
    val_images: int
    val_source: str

    @staticmethod
    def _stats(values: list[float]) -> tuple[float, float]:
        import math
        if not values:
            return math.nan, math.nan
        mean = sum(values) / len(values)
        return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))

    @property
    def best(self) -> list[float]:
        return [float(r["best_top1"]) for r in self.repeats]

    @property
    def last(self) -> list[float]:
        return [float(r["last_top1"]) for r in self.repeats]

    def summary(self) -> dict:
        (bm, bs), (lm, ls) = self._stats(self.best), self._stats(self.last)
        return {"n_repeats": len(self.repeats), "best_top1_mean": bm, "best_top1_std": bs, "last_top1_mean": lm,
                "last_top1_std": ls}

    def as_dict(self) -> dict:
        """The JSON form written to results.json."""
        return {"model": dict(self.model), "epochs": self.epochs, "eval_every": self.eval_every,
                "train_images": self.train_images, "train_source": self.train_source, "val_images": self.val_images,
                "val_source": self.val_source, "protocol": self.protocol, **self.summary(), "repeats": self.repeats}
