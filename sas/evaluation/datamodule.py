"""A DataModule that keeps a tiny distilled train set and the real val set on the device, or streams a split
too large for that (sas.data.stream.StreamedSet) from its files.

    dm = ResidentDataModule(train_set, val_set, augment=TrainAugment(224), batch_size=64)

Resident sets: the loaders yield index batches only; `on_after_batch_transfer`
gathers the uint8 images from tensors moved to the device once, then augments
(train) or normalises (val) them there. A 100-500 image distilled set needs no
workers, no pinned memory and no host-to-device image copies per step.
Streamed sets (ImageNet-1K's 50,000 val images, a real train split for the
domain encoder): DataLoader workers decode the files and the uint8 batches are
augmented / normalised on the device the same way. Under DDP Lightning gives
every rank its stripe of either loader (DistributedSampler), and the
classifier's torchmetrics accuracy sums the ranks' counts.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from sas.data.augment import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, normalize, to_unit_float
from sas.data.images import ImageSet
from sas.devices import pin_on_cuda


def _streamed(split) -> bool:
    return bool(getattr(split, "streamed", False))


class ResidentDataModule(pl.LightningDataModule):
    def __init__(self, train: ImageSet, val: ImageSet, augment: TrainAugment | None = None,
                 batch_size: int = 64, eval_batch_size: int = 500, seed: int = 0,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, image_size: int | None = None):
        super().__init__()
        if train.num_classes != val.num_classes:
            raise ValueError(f"train set has {train.num_classes} classes but val set has {val.num_classes}"
                             f" ({train.source} vs {val.source})")
        self.train_set, self.val_set = train, val
        self.augment, self.batch_size, self.eval_batch_size, self.seed = augment, batch_size, eval_batch_size, seed
        self.mean, self.std = tuple(mean), tuple(std)                  # val (and un-augmented train) normalisation
        self.image_size = image_size            # val images decoded larger are centre-cropped to it (RDED:
                                                # decoded at 256, crop 224)
        self._device = None

    def _loader(self, split, batch_size: int, shuffle: bool) -> DataLoader:
        pin = pin_on_cuda(self.trainer)
        if _streamed(split):                                           # (uint8 images, labels) from workers
            return split.loader(batch_size, pin_memory=pin, shuffle=shuffle, seed=self.seed)
        return DataLoader(torch.arange(len(split)), batch_size=batch_size, shuffle=shuffle, pin_memory=pin)

    def train_dataloader(self):
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def _to(self, device: torch.device) -> None:
        """Move the resident sets to the device once; seed the per-image draws (on the device)."""
        for name, split in (("train", self.train_set), ("val", self.val_set)):
            if not _streamed(split):
                setattr(self, f"{name}_images", split.images.to(device))      # (N, 3, H, W) uint8
                setattr(self, f"{name}_labels", split.labels.to(device))      # (N,)
        rank = self.trainer.global_rank if self.trainer is not None else 0
        self.generator = torch.Generator(device=device).manual_seed(self.seed * 1000 + rank)
        self._device = device

    def on_after_batch_transfer(self, batch, dataloader_idx):
        streamed = isinstance(batch, (list, tuple))
        device = batch[0].device if streamed else batch.device
        if self._device != device:
            self._to(device)
        training = self.trainer is not None and self.trainer.training
        if streamed:
            x, y = batch                                           # (B, 3, H, W) uint8, (B,)
        else:
            x = (self.train_images if training else self.val_images)[batch]
            y = (self.train_labels if training else self.val_labels)[batch]
        if training and self.augment is not None:
            return self.augment(x, self.generator), y
        if not training and self.image_size and x.shape[-1] > self.image_size:
            from torchvision.transforms.functional import center_crop
            x = center_crop(x, [self.image_size, self.image_size])
        return normalize(to_unit_float(x), self.mean, self.std), y
