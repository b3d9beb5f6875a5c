"""Image sets held as uint8 tensors, and the loader of ImageFolder-style class folders.

    from sas.data.images import load_class_folders
    images = load_class_folders("/data/imagenet/val", table, image_size=224)
    images.images   # (N, 3, 224, 224) uint8, resized (shorter side) + centre-cropped
    images.labels   # (N,) int64 in table order
    images.source   # what was read, e.g. "ImageNet layout: /data/imagenet/val"

Every file is decoded up front (threads), so a missing folder, an empty class
folder or an unreadable image fails here, naming the path, before any training.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from sas.data.classes import ClassTable

__all__ = ["ImageSet", "DataError", "IMAGE_EXTENSIONS", "load_class_folders", "load_image", "list_class_files"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".JPEG", ".JPG", ".PNG", ".bmp", ".webp")


class DataError(ValueError):
    """A dataset, folder or file that cannot be used; the message names the path."""


@dataclass
class ImageSet:
    """Images of one split as one uint8 tensor, with labels in class-table order."""

    images: Tensor                  # (N, 3, H, W) uint8
    labels: Tensor                  # (N,) int64
    classes: ClassTable
    source: str                     # which data and layout this is, for logs and results
    files: list[str] = field(default_factory=list)  # source file of each image, when read from disk

    def __post_init__(self):
        if self.images.dim() != 4 or self.images.shape[1] != 3 or self.images.dtype != torch.uint8:
            raise DataError(f"{self.source}: images must be (N, 3, H, W) uint8, got "
                            f"{tuple(self.images.shape)} {self.images.dtype}")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.source}: {self.labels.shape[0]} labels for {self.images.shape[0]} images")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def per_class(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()


def load_image(path: str | os.PathLike, image_size: int) -> Tensor:
    """Decode one file -> (3, S, S) uint8: RGB, shorter side resized to S (antialiased), centre crop S."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img = TF.center_crop(TF.resize(img, image_size, antialias=True), image_size)
            return TF.pil_to_tensor(img)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None


def list_class_files(root: Path, table: ClassTable) -> list[tuple[str, int]]:
    """(path, label) for every image under root/<class folder>/, sorted by name within a class."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    out = []
    for label, folder in enumerate(table.folders):
        d = root / folder
        if not d.is_dir():
            raise DataError(f"class folder missing: {d} (class {label} '{table.names[label]}' of {table.name})")
        files = sorted(p for p in d.iterdir() if p.suffix in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise DataError(f"class folder has no images: {d} (class {label} '{table.names[label]}')")
        out += [(str(p), label) for p in files]
    return out


def decode_all(paths: list[str], image_size: int, workers: int | None = None) -> Tensor:
    """Decode files in a thread pool -> (N, 3, S, S) uint8; the first bad file raises."""
    workers = workers or min(16, os.cpu_count() or 1)
    out = torch.empty(len(paths), 3, image_size, image_size, dtype=torch.uint8)

    def one(i):
        out[i] = load_image(paths[i], image_size)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(paths))))
    return out


def load_class_folders(root, table: ClassTable, image_size: int, source: str | None = None,
                       per_class: int | None = None) -> ImageSet:
    """Read root/<class folder>/* for every class of the table (first per_class files of each, if set)."""
    items = list_class_files(Path(root), table)
    if per_class is not None:
        kept, count = [], Counter()
        for path, label in items:
            if count[label] < per_class:
                kept.append((path, label))
                count[label] += 1
        items = kept
    paths = [p for p, _ in items]
    labels = torch.tensor([y for _, y in items], dtype=torch.int64)
    return ImageSet(decode_all(paths, image_size), labels, table, source or f"class folders: {root}", paths)
