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
so both give the same numbers. check_streamed(split, cache_dir) checks every file
up front (a resident split is checked as it is decoded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sas.data.classes import ClassTable

__all__ = ["StreamedSet", "resident_gb", "iter_batches", "take", "check_streamed", "file_problem"]


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


def file_problem(path: str) -> str | None:
    """What is wrong with an image file, judged from its header and its end (no decoding), or None: not a
    readable image, no pixels, a JPEG without its end-of-image marker or a PNG without IEND near the end
    (a file cut short)."""
    import os

    from PIL import Image, UnidentifiedImageError
    try:
        size = os.path.getsize(path)
        with Image.open(path) as img:
            fmt, (w, h) = img.format, img.size
        if w <= 0 or h <= 0:
            return f"{w}x{h} pixels"
        with open(path, "rb") as f:
            f.seek(max(0, size - 1024))
            tail = f.read()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        return str(err).splitlines()[0][:160] or type(err).__name__
    if fmt == "JPEG" and b"\xff\xd9" not in tail:          # inside the scan an 0xFF byte is followed by 0x00
        return "cut short (no JPEG end-of-image marker)"
    if fmt == "PNG" and b"IEND" not in tail[-64:]:
        return "cut short (no PNG IEND chunk)"
    return None


class _Problems(Dataset):
    def __init__(self, files: list[str]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return file_problem(self.files[i])


def check_streamed(split, cache_dir=None, progress: bool = True) -> None:
    """Check every file of a streamed split before any expensive stage (a resident split was checked when it
    was decoded): headers and ends in the split's DataLoader workers, one progress bar; DataError naming the
    bad files. A split that passed is remembered by its file list, sizes and mtimes (<cache>/checked/), so a
    1.28M-image split is checked once."""
    import hashlib
    import json
    import os
    from pathlib import Path

    from tqdm.auto import tqdm

    from sas.data.images import DataError
    if not getattr(split, "streamed", False):
        return
    listing = hashlib.sha256()
    for f in split.files:
        st = os.stat(f)
        listing.update(json.dumps([f, st.st_size, st.st_mtime_ns]).encode())
    verdict = Path(cache_dir) / "checked" / f"{listing.hexdigest()[:32]}.ok" if cache_dir else None
    if verdict is not None and verdict.is_file():
        return
    bad = []
    loader = DataLoader(_Problems(split.files), batch_size=256, num_workers=split.workers, collate_fn=list)
    with tqdm(total=len(split), desc=f"check {split.source[:40]}", unit="img", disable=not progress) as bar:
        start = 0
        for problems in loader:
            bad += [(split.files[start + j], p) for j, p in enumerate(problems) if p is not None]
            start += len(problems)
            bar.update(len(problems))
    if bad:
        shown = "; ".join(f"{f}: {p}" for f, p in bad[:5])
        raise DataError(f"{len(bad)} damaged image file(s) in {split.source}: {shown}"
                        + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "") + ". Replace or remove them.")
    if verdict is not None:
        from sas.io import atomic_write_text
        atomic_write_text(verdict, f"{len(split)} files checked\n")
