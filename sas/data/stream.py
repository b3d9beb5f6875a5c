"""A real split too large to hold in memory, read from its files by DataLoader workers.

    split = StreamedSet(files, labels, table, source, image_size=224, workers=8)
    for images, labels in split.batches(256):        # (B, 3, S, S) uint8, (B,) int64, in file order
        ...
    loader = split.loader(500)                       # the same as a DataLoader (Lightning adds the
                                                     # DistributedSampler under DDP: each rank a stripe)

RealData.split() returns one of these instead of a resident ImageSet when the
decoded split would exceed `dataset.resident_max_gb` (3 x S x S bytes per
image). Every consumer of a real split takes either: visual prototypes, the
domain encoder, Minimax latent encoding and evaluation on the real val split.
Images decode exactly as the resident path decodes them (sas.data.images.load_image),
so both give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sas.data.classes import ClassTable

__all__ = ["StreamedSet", "resident_gb", "iter_batches", "take"]


def resident_gb(n_images: int, image_size: int) -> float:
    """Memory of n decoded uint8 RGB images of side image_size, in GiB."""
    return n_images * 3 * image_size * image_size / 2 ** 30


class _Files(Dataset):
    def __init__(self, files: list[str], labels: Tensor, image_size: int):
        self.files, self.labels, self.image_size = files, labels, image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from sas.data.images import load_image
        return load_image(self.files[i], self.image_size), self.labels[i]      # (3, S, S) uint8, ()


@dataclass
class StreamedSet:
    files: list[str]
    labels: Tensor                  # (N,) int64
    classes: ClassTable
    source: str
    image_size: int
    workers: int = 8
    streamed: bool = field(default=True, init=False)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def per_class(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def loader(self, batch_size: int, pin_memory: bool = False, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """In file order, or shuffled by a generator seeded with `seed` (training)."""
        return DataLoader(_Files(self.files, self.labels, self.image_size), batch_size=batch_size, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(seed) if shuffle else None,
                          num_workers=self.workers, pin_memory=pin_memory,
                          persistent_workers=False, prefetch_factor=4 if self.workers else None)

    def batches(self, batch_size: int):
        yield from self.loader(batch_size)


def iter_batches(split, batch_size: int):
    """(images uint8 (B, 3, S, S), labels (B,)) of a resident ImageSet or a StreamedSet, in order."""
    if getattr(split, "streamed", False):
        yield from split.batches(batch_size)
        return
    for start in range(0, len(split), batch_size):
        yield split.images[start:start + batch_size], split.labels[start:start + batch_size]


def take(split, start: int, end: int):
    """Images start..end-1 of a resident ImageSet or a StreamedSet, as the same kind of set."""
    from dataclasses import replace
    if getattr(split, "streamed", False):
        return replace(split, files=split.files[start:end], labels=split.labels[start:end])
    return replace(split, images=split.images[start:end], labels=split.labels[start:end],
                   files=split.files[start:end] if split.files else [])
