"""Real training / validation data of a distillation benchmark.

    from sas.data.real import RealData
    data = RealData(name="imagewoof", root="/data/imagenet", layout="imagenet", image_size=224)
    val = data.load("val")          # ImageSet; val.source says which layout and split it read

Layouts (a config value, `dataset.layout`):
  imagenet  root/train/<wnid>/*, root/val/<wnid>/* (ImageNet val sorted into wnid
            folders: 50 per class). The paper's setting.
  fastai    the fastai release (imagewoof2 / imagenette2) as it unpacks under
            data_dir (root/<release>/), downloaded with a progress bar and checked
            by md5 when missing and `download` is true. Same classes, other
            splits: results differ from the paper's, and `source` says so.
  folder    any ImageFolder root/<split>/<class folder>/* with the class names
            of `classes` (for datasets beyond the paper's).
  cifar10   torchvision's CIFAR-10 under root (md5-checked; download-if-missing).
  digits    scikit-learn's digits (ships with the package; offline).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sas.data.classes import ClassTable, get_class_table
from sas.data.images import DataError, ImageSet, decode_items, first_per_class, list_class_files

log = logging.getLogger(__name__)

__all__ = ["RealData", "RealSplits", "FASTAI_RELEASES", "load_digits_split", "LAYOUTS"]

# fastai releases: url, md5 of the archive (torchvision's for imagenette2). A null md5 skips the check.
FASTAI_RELEASES = {
    "imagenette": ("imagenette2", "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz",
                   "fe2fc210e6bb7c5664d602c3cd71e612"),
    "imagewoof": ("imagewoof2", "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2.tgz",
                  "5eaf5bbf4bf16a77c616dc6e8dd5f8e9"),
}
LAYOUTS = ("imagenet", "fastai", "folder", "cifar10", "digits")
SPLITS = ("train", "val")


def load_digits_split(split: str, image_size: int = 32, test_size: float = 0.3, seed: int = 0,
                      per_class: int | None = None) -> ImageSet:
    """scikit-learn's digits (1,797 real 8x8 digits), a fixed seeded stratified split, as RGB uint8.

    split "train" or "val" (the held-out test part). Images are upscaled
    (bilinear) to image_size and replicated to 3 channels.
    """
    import numpy as np
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx_tr, idx_te = train_test_split(np.arange(len(d.target)), test_size=test_size, random_state=seed,
                                      stratify=d.target)
    idx = np.sort(idx_tr if split == "train" else idx_te)
    if per_class is not None:  # the first per_class images of each class in the split
        idx = np.concatenate([idx[d.target[idx] == c][:per_class] for c in range(10)])
        idx = np.sort(idx)
    x = torch.from_numpy(d.images[idx]).float()[:, None] / 16.0                # (n, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return ImageSet(x, torch.from_numpy(d.target[idx]).long(), get_class_table("digits"),
                    f"sklearn digits, seeded {1 - test_size:.0%}/{test_size:.0%} split (seed {seed}), {split}")


@dataclass
class RealData:
    """The real data of one dataset config (see module docstring)."""

    name: str                               # class table: imagewoof, imagenette, imageidc, cifar10, digits, ...
    root: str | None = None                 # the folder the layout reads; None: from data_dir (default_root)
    layout: str = "imagenet"
    data_dir: str | None = None             # paths.data_dir: where the default roots are
    image_size: int = 224
    download: bool = False
    classes: list[str] | None = None        # class names for a custom `folder` dataset
    seed: int = 0                           # digits split
    md5: str | None = field(default=None)   # fastai archive checksum override
    follow_symlinks: bool = False           # accept class folders / images that link outside the root
    resident_max_gb: float = 8.0            # a file split larger than this decoded is streamed (split())
    workers: int = 8                        # DataLoader workers of a streamed split

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise DataError(f"dataset.layout must be one of {LAYOUTS}, got '{self.layout}'")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise DataError(f"dataset.workers must be an integer >= 0 (0: read in the main process), got "
                            f"{self.workers!r}")
        if isinstance(self.resident_max_gb, bool) or not isinstance(self.resident_max_gb, (int, float)) or \
                not 0 <= self.resident_max_gb < float("inf"):
            raise DataError(f"dataset.resident_max_gb must be a number >= 0 (0: stream every file split), got "
                            f"{self.resident_max_gb!r}")
        if not self.root and self.layout != "digits":
            self.root = self.default_root()

    def default_root(self) -> str:
        """Where each layout unpacks under data_dir: imagenet -> <data_dir>/imagenet (train/, val/); fastai ->
        <data_dir> (the release unpacks to <data_dir>/imagewoof2/); cifar10 -> <data_dir>/cifar10 (torchvision's
        cifar-10-batches-py/ inside); folder: no default."""
        if self.layout == "folder" or not self.data_dir:
            raise DataError(f"dataset '{self.name}' with layout '{self.layout}' needs dataset.root"
                            + ("" if self.layout == "folder" else " (or paths.data_dir)"))
        sub = {"imagenet": "imagenet", "fastai": "", "cifar10": "cifar10"}[self.layout]
        return str(Path(self.data_dir) / sub) if sub else str(self.data_dir)

    @property
    def table(self) -> ClassTable:
        if self.classes is not None:
            return ClassTable.from_names(self.name, list(self.classes))
        return get_class_table(self.name)

    def check(self) -> None:
        """Cheap checks of the roots and class folders (no decoding), to run before expensive work."""
        if self.layout in ("imagenet", "folder", "fastai"):
            for split in SPLITS:
                where = self._split_dir(split, fetch=False)
                if not where.is_dir():
                    raise DataError(f"data folder not found: {where}. {self.how_to_provide()}")
                list_class_files(where, self.table, self.follow_symlinks)
        elif self.layout == "cifar10":
            self._cifar10_ready()

    def how_to_provide(self) -> str:
        """What to do about missing real data, for error messages (never the setting already given)."""
        hint = (f"Point the job at the folder holding it: paths.data_dir=/path/to/data (or the SAS_DATA_DIR "
                f"environment variable; the dataset reads {self.root}), or dataset.root=/path directly.")
        if self.name not in FASTAI_RELEASES:
            return hint
        release, url, _ = FASTAI_RELEASES[self.name]
        if self.layout == "fastai":
            return hint + (" " if self.download else f" Or set dataset.download=true to fetch {url} there, or ") + \
                f"unpack {Path(url).name} into {self.root} (it makes {release}/)."
        found = Path(self.data_dir or Path(self.root).parent) / release
        if found.is_dir():
            return hint + f" The fastai {release} release is at {found}: add dataset.layout=fastai to read it " \
                          "(other splits than the paper's: figures differ)."
        return hint + (f" Without the ImageNet train/val folders, dataset.layout=fastai dataset.download=true fetches "
                       f"the fastai {release} release (other splits: figures differ from the paper's).")

    def _split_dir(self, split: str, fetch: bool = True) -> Path:
        root = Path(self.root)
        if self.layout != "fastai":
            return root / split
        if self.name not in FASTAI_RELEASES:
            raise DataError(f"no fastai release for dataset '{self.name}'; known: {sorted(FASTAI_RELEASES)}")
        release, url, md5 = FASTAI_RELEASES[self.name]
        if not (root / release).is_dir() and fetch:
            if not self.download:
                raise DataError(f"fastai release not found: {root / release}. {self.how_to_provide()}")
            from torchvision.datasets.utils import download_and_extract_archive
            download_and_extract_archive(url, str(root), md5=self.md5 or md5)
        return root / release / split

    def split(self, split: str, per_class: int | None = None):
        """A split for every consumer: resident (ImageSet, decoded once) when its decoded size fits
        resident_max_gb, else streamed from its files by DataLoader workers (sas.data.stream.StreamedSet)."""
        if self.layout in ("digits", "cifar10"):                  # array datasets: in memory anyway
            return self.load(split, per_class)
        from sas.data.stream import StreamedSet, resident_gb

        items, source = self._listed(split, per_class)
        if resident_gb(len(items), self.image_size) <= self.resident_max_gb:
            return decode_items(items, self.table, self.image_size, source)
        log.info("streaming %s %s: %d images (%.1f GB decoded > dataset.resident_max_gb=%s)", self.name, split,
                 len(items), resident_gb(len(items), self.image_size), self.resident_max_gb)
        return StreamedSet([p for p, _ in items], torch.tensor([y for _, y in items], dtype=torch.int64),
                           self.table, source, self.image_size, self.workers)

    def load(self, split: str, per_class: int | None = None) -> ImageSet:
        """One split, decoded; per_class keeps the first images of each class (folder layouts and digits)."""
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got '{split}'")
        if self.layout == "digits":
            return load_digits_split(split, self.image_size, seed=self.seed, per_class=per_class)
        if self.layout == "cifar10":
            return self._cifar10(split)
        items, source = self._listed(split, per_class)
        return decode_items(items, self.table, self.image_size, source)

    def _listed(self, split: str, per_class: int | None) -> tuple[list[tuple[str, int]], str]:
        """The (path, label) items of a file split (first per_class of each class) and what they are."""
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got '{split}'")
        where = self._split_dir(split)
        source = {
            "imagenet": f"ImageNet layout ({self.name} classes): {where}",
            "fastai": f"fastai {FASTAI_RELEASES.get(self.name, ('?',))[0]} release, {split} split: {where}"
                      " (not the paper's ImageNet split: figures differ from the paper's)",
            "folder": f"ImageFolder: {where}",
        }[self.layout]
        if self.layout == "fastai":
            log.warning("reading the %s", source)
        return first_per_class(list_class_files(where, self.table, self.follow_symlinks), per_class), source

    def _cifar10_ready(self) -> None:
        """torchvision's CIFAR-10 files under root, each with its md5 (downloaded first when download is true);
        a DataError naming the folder, what it holds and how to provide the files otherwise."""
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import check_integrity

        folder = Path(self.root) / CIFAR10.base_folder
        expected = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
        state = {name: ("missing" if not (folder / name).is_file() else
                        "ok" if check_integrity(str(folder / name), md5) else "md5 mismatch") for name, md5 in expected}
        if all(v == "ok" for v in state.values()):
            return
        tried = ""
        if self.download:
            try:
                CIFAR10(self.root, download=True)
                return
            except (OSError, RuntimeError) as err:            # no network: URLError is an OSError
                tried = f"; the download failed ({type(err).__name__}: {str(err)[:160]})"
        found = ", ".join(f"{n}: {v}" for n, v in state.items() if v != "ok")
        raise DataError(f"CIFAR-10 files under {folder} are not torchvision's release ({found}){tried}. Provide them: "
                        f"unpack {CIFAR10.url} (md5 {CIFAR10.tgz_md5}) into {self.root} (it makes "
                        f"{CIFAR10.base_folder}/), or run once with dataset.download=true where there is internet; "
                        "paths.data_dir or dataset.root point the job elsewhere")

    def _cifar10(self, split: str) -> ImageSet:
        from torchvision.datasets import CIFAR10
        self._cifar10_ready()
        ds = CIFAR10(self.root, train=split == "train", download=False)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()         # (N, 3, 32, 32) uint8
        if self.image_size != x.shape[-1]:
            import torch.nn.functional as F
            x = F.interpolate(x.float(), size=self.image_size, mode="bilinear", antialias=True)
            x = x.round().clamp(0, 255).to(torch.uint8)
        return ImageSet(x, torch.tensor(ds.targets), self.table, f"torchvision CIFAR-10 ({split}): {self.root}")


class RealSplits:
    """The real splits a run reads, each read once on first use (RealData.split: decoded, every file checked,
    or streamed from its files when larger than dataset.resident_max_gb).

    splits = RealSplits(data, prototype_per_class=None, holdout_per_class=50)
    splits.get("train"); splits.get("val"); splits.get("holdout")   # holdout: the first train files per class

Visual prototypes read the first prototype_per_class train images per class (None: all); the holdout split
(eval_split=holdout, for tuning) never touches the test split."""

    def __init__(self, data: RealData, prototype_per_class: int | None = None, holdout_per_class: int = 50):
        self.data, self.prototype_per_class, self.holdout_per_class = data, prototype_per_class, holdout_per_class
        self._cache: dict = {}

    def get(self, split: str):
        if split not in self._cache:
            if split == "holdout":
                self._cache[split] = self.data.split("train", per_class=self.holdout_per_class)
            else:
                per_class = self.prototype_per_class if split == "train" else None
                self._cache[split] = self.data.split(split, per_class=per_class)
        return self._cache[split]

    def train(self):
        return self.get("train")
