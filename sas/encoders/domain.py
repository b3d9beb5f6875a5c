"""A domain encoder: a small CNN trained on the real training split, whose features replace CLIP's.

    enc = DomainEncoder(model={"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 64}, image_size=32)
    enc.fit(real_train, cache_dir)                # trains once per (data, config); cached weights
    feats = enc.encode_files(paths)               # (N, d) normalised penultimate features

For domains where CLIP's semantics are weak (the paper's future work: medical,
remote sensing, ... and the offline demo's digits). It has no text tower:
prototypes are visual (mean embedding of the real training images per class).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sas.data.images import ImageSet
from sas.io import atomic_torch_save, atomic_write_text

__all__ = ["DomainEncoder"]


@dataclass
class DomainEncoder:
    model: dict = field(default_factory=lambda: {"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 64})
    image_size: int = 32
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0
    prototypes: str = "visual"
    encode_batch: int = 512
    _net: nn.Module | None = field(default=None, init=False, repr=False)
    _data_key: dict = field(default_factory=dict, init=False, repr=False)   # what it was trained on

    def __post_init__(self):
        if self.prototypes != "visual":
            raise ValueError("the domain encoder has no text tower: set encoder.prototypes=visual")

    def key_config(self) -> dict:
        return {"kind": "domain", "model": dict(self.model), "image_size": self.image_size, "epochs": self.epochs,
                "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed, **self._data_key}

    def fit(self, train: ImageSet, cache_dir, progress: bool = False) -> "DomainEncoder":
        """Train on the real training split (or load the cached weights of an identical run)."""
        import pytorch_lightning as pl

        from sas.data.augment import TrainAugment
        from sas.evaluation.classifier import Classifier
        from sas.evaluation.datamodule import ResidentDataModule
        from sas.models import build_model
        from sas.cache import config_key

        self._data_key = {"data": train.source, "n_train": len(train)}
        path = Path(cache_dir) / "encoders" / f"domain-{config_key(self.key_config())}.pt"
        pl.seed_everything(self.seed, verbose=False)
        net = build_model(self.model, train.num_classes, image_size=self.image_size)
        if path.is_file():
            net.load_state_dict(torch.load(path, weights_only=True))
        else:
            module = Classifier(net, epochs=self.epochs, lr=self.lr, cutmix_prob=0.0, seed=self.seed)
            dm = ResidentDataModule(train, train, TrainAugment(self.image_size, lighting=0.0),
                                    batch_size=self.batch_size, seed=self.seed)
            trainer = pl.Trainer(max_epochs=self.epochs, accelerator="auto", devices=1, logger=False,
                                 enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
                                 enable_progress_bar=progress, num_sanity_val_steps=0)
            trainer.fit(module, dm)
            atomic_torch_save(net.state_dict(), path)
            atomic_write_text(path.with_suffix(".json"), json.dumps(self.key_config(), indent=1))
        net.classifier = nn.Identity()  # penultimate features
        self._net = net.eval()
        return self

    @torch.no_grad()
    def encode_tensors(self, images: torch.Tensor) -> torch.Tensor:
        from sas.data.augment import normalize, to_unit_float
        if self._net is None:
            raise RuntimeError("DomainEncoder.fit(real_train, cache_dir) must run before encoding")
        dev = next(self._net.parameters()).device
        out = []
        for i in range(0, len(images), self.encode_batch):
            x = to_unit_float(images[i:i + self.encode_batch].to(dev))
            if x.shape[-1] != self.image_size:
                x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                                    antialias=True, align_corners=False)
            f = self._net(normalize(x)).flatten(1).float()
            out.append((f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)).cpu())
        return torch.cat(out)

    def encode_files(self, files: list[str], progress: bool = False) -> torch.Tensor:
        from sas.data.images import decode_all
        return self.encode_tensors(decode_all(files, self.image_size))

    def text_prototypes(self, class_names):
        raise ValueError("the domain encoder has no text tower: set encoder.prototypes=visual")
