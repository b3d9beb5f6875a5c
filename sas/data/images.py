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

__all__ = ["ImageSet", "DataError", "IMAGE_EXTENSIONS", "load_class_folders", "load_image", "list_class_files",
           "first_per_class", "decode_items",
           "to_rgb", "open_rgb"]

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


ALPHA = ("drop", "white", "black")     # what to do with transparency: drop it (PIL / torchvision's
                                       # convert("RGB"), what IDC's loader does) or composite onto a colour
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb(img, path, alpha: str = "drop"):
    """Any PIL image -> an 8-bit RGB PIL image, decoded by its mode:
    16-bit grey (I;16*, and I holding 0..65535) scaled to 8 bits (v / 257, rounded); palette with
    transparency, LA, PA, RGBA: alpha dropped or composited onto white / black (`alpha`); 1, L, P,
    RGB, CMYK, YCbCr through PIL's conversion. Other modes (F, LAB, HSV, ...) are refused naming the file."""
    import numpy as np
    from PIL import Image

    if alpha not in ALPHA:
        raise ValueError(f"alpha must be one of {ALPHA}, got '{alpha}'")
    mode = img.mode
    if mode in SIXTEEN_BIT:
        a = np.asarray(img, dtype=np.float64)
        if mode == "I" and (a.min() < 0 or a.max() > 65535):
            raise DataError(f"cannot read image {path}: 32-bit integer pixels outside 0..65535")
        grey = np.rint(a / 257.0).astype(np.uint8)
        return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        if alpha == "drop":
            return rgba.convert("RGB")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if alpha == "white" else (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):
        return img.convert("RGB")
    raise DataError(f"cannot read image {path}: pixel mode '{mode}' is not supported (save it as 8- or 16-bit "
                    "RGB / grey, or palette)")


def load_image(path: str | os.PathLike, image_size: int, alpha: str = "drop") -> Tensor:
    """Decode one file -> (3, S, S) uint8: RGB (see to_rgb), shorter side resized to S (antialiased),
    centre crop S. The one image loader of real data, distilled sets and encoders."""
    from torchvision.transforms import functional as TF

    img = open_rgb(path, alpha)                                    # DataError naming the file if it cannot
    return TF.pil_to_tensor(TF.center_crop(TF.resize(img, image_size, antialias=True), image_size))


def open_rgb(path, alpha: str = "drop"):
    """Open an image file as 8-bit RGB PIL (see to_rgb); a file that cannot be decoded raises DataError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            out = to_rgb(img, path, alpha)
            out.load()
            return out
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read image {path}: {err}") from None


def list_class_files(root: Path, table: ClassTable, follow_symlinks: bool = False) -> list[tuple[str, int]]:
    """(path, label) for every image under root/<class folder>/, sorted by name within a class.

    Symbolic links are refused (naming them) when they lead outside root, or when a class folder is
    the same folder as another class's; follow_symlinks=True accepts them as they are.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    real_root = root.resolve()
    out, seen = [], {}
    for label, folder in enumerate(table.folders):
        d = root / folder
        if not d.is_dir():
            raise DataError(f"class folder missing: {d} (class {label} '{table.names[label]}' of {table.name})")
        real = d.resolve()
        if not follow_symlinks:
            if real_root not in real.parents:
                raise DataError(f"class folder {d} links outside {root} (to {real}); set follow_symlinks=true to "
                                "accept it")
            if real in seen:
                raise DataError(f"class folder {d} is the same folder as {seen[real]}: two classes would share "
                                "images")
        seen[real] = d
        files = sorted(p for p in d.iterdir() if p.suffix in IMAGE_EXTENSIONS and p.is_file())
        if not follow_symlinks:
            for p in files:
                if p.is_symlink() and real_root not in p.resolve().parents:
                    raise DataError(f"image {p} links outside {root} (to {p.resolve()}); set follow_symlinks=true "
                                    "to accept it")
        if not files:
            raise DataError(f"class folder has no images: {d} (class {label} '{table.names[label]}')")
        out += [(str(p), label) for p in files]
    return out


def decode_all(paths: list[str], image_size: int, workers: int | None = None, progress: bool | None = None
               ) -> Tensor:
    """Decode files in a thread pool -> (N, 3, S, S) uint8; the first bad file raises, naming it.
    A progress bar with a rate shows for large sets (progress=None: from 2,000 files on)."""
    from tqdm.auto import tqdm

    workers = workers or min(16, os.cpu_count() or 1)
    out = torch.empty(len(paths), 3, image_size, image_size, dtype=torch.uint8)

    def one(i):
        out[i] = load_image(paths[i], image_size)

    show = len(paths) >= 2000 if progress is None else progress
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(paths), desc="decode", unit="img",
                                                   disable=not show, leave=False) as bar:
        for _ in pool.map(one, range(len(paths))):
            bar.update(1)
    return out


def first_per_class(items: list[tuple[str, int]], per_class: int | None) -> list[tuple[str, int]]:
    """The first per_class (path, label) items of each class, in order (None: all)."""
    if per_class is None:
        return items
    kept, count = [], Counter()
    for path, label in items:
        if count[label] < per_class:
            kept.append((path, label))
            count[label] += 1
    return kept


def load_class_folders(root, table: ClassTable, image_size: int, source: str | None = None,
                       per_class: int | None = None, follow_symlinks: bool = False) -> ImageSet:
    """Read root/<class folder>/* for every class of the table (first per_class files of each, if set)."""
    items = first_per_class(list_class_files(Path(root), table, follow_symlinks), per_class)
    return decode_items(items, table, image_size, source or f"class folders: {root}")


def decode_items(items: list[tuple[str, int]], table: ClassTable, image_size: int, source: str) -> ImageSet:
    """(path, label) items, decoded in order -> ImageSet."""
    paths = [p for p, _ in items]
    labels = torch.tensor([y for _, y in items], dtype=torch.int64)
    return ImageSet(decode_all(paths, image_size), labels, table, source, paths)
