"""A DataModule that keeps a tiny distilled train set and the real val set on the device.

    dm = ResidentDataModule(train_set, val_set, augment=TrainAugment(224), batch_size=64)

The loaders yield index batches only; `on_after_batch_transfer` gathers the
uint8 images from tensors moved to the device once, then augments (train) or
normalises (val) them there. A 100-500 image distilled set needs no workers,
no pinned memory and no host-to-device image copies per step.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from sas.data.augment import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, normalize, to_unit_float
from sas.data.images import ImageSet
from sas.devices import pin_on_cuda



class ResidentDataModule(pl.LightningDataModule):
    def __init__(self, train: ImageSet, val: ImageSet, augment: TrainAugment | None = None,
                 batch_size: int = 64, eval_batch_size: int = 500, seed: int = 0,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        if train.num_classes != val.num_classes:
            raise ValueError(f"train set has {train.num_classes} classes but val set has {val.num_classes}"
                             f" ({train.source} vs {val.source})")
        self.train_set, self.val_set = train, val
        self.augment, self.batch_size, self.eval_batch_size, self.seed = augment, batch_size, eval_batch_size, seed
        self.mean, self.std = tuple(mean), tuple(std)                  # val (and un-augmented train) normalisation
        self._device = None

    def train_dataloader(self):
        return DataLoader(torch.arange(len(self.train_set)), batch_size=self.batch_size, shuffle=True,
                          pin_memory=pin_on_cuda(self.trainer))

    def val_dataloader(self):
        return DataLoader(torch.arange(len(self.val_set)), batch_size=self.eval_batch_size, shuffle=False,
                          pin_memory=pin_on_cuda(self.trainer))

    def _to(self, device: torch.device) -> None:
        """Move both sets to the device once; seed the per-image draws (on the device)."""
        self.train_images = self.train_set.images.to(device)      # (N, 3, H, W) uint8
        self.train_labels = self.train_set.labels.to(device)      # (N,)
        self.val_images = self.val_set.images.to(device)
        self.val_labels = self.val_set.labels.to(device)
        rank = self.trainer.global_rank if self.trainer is not None else 0
        self.generator = torch.Generator(device=device).manual_seed(self.seed * 1000 + rank)
        self._device = device

    def on_after_batch_transfer(self, batch, dataloader_idx):
        idx = batch                                                # (B,) indices on the device
        if self._device != idx.device:
            self._to(idx.device)
        training = self.trainer is not None and self.trainer.training
        if training:
            x = self.train_images[idx]
            x = self.augment(x, self.generator) if self.augment is not None else \
                normalize(to_unit_float(x), self.mean, self.std)
            return x, self.train_labels[idx]
        return normalize(to_unit_float(self.val_images[idx]), self.mean, self.std), self.val_labels[idx]
