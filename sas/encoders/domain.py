"""A domain encoder: a small CNN trained on the real training split, whose features replace CLIP's.

    enc = DomainEncoder(model={"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 64}, image_size=32)
    enc.fit(context)                              # EvalContext: trains once per (data, config); cached weights
    feats = enc.encode_files(paths)               # (N, d) normalised penultimate features

For domains where CLIP's semantics are weak (the paper's future work: medical,
remote sensing, ... and the offline demo's digits). It has no text tower:
prototypes are visual (mean embedding of the real training images per class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from sas.encoders.base import Encoder

__all__ = ["DomainEncoder"]


@dataclass
class DomainEncoder(Encoder):
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

    def training(self, progress: bool = False):
        """Its training as a hard-label evaluation protocol (IDC's optimiser and schedule, the random-resized-crop,
        flip and jitter augmentation without PCA lighting, no CutMix), evaluated once on the real val split at
        the end."""
        from sas.evaluation.protocol import Protocol
        return Protocol(lr=self.lr, batch_size=self.batch_size, epochs=self.epochs, cutmix_prob=0.0, lighting=0.0,
                        image_size=self.image_size, evaluations=1, repeats=1, seed=self.seed, progress=progress)

    def fit(self, context, progress: bool = False) -> "DomainEncoder":
        """Train on the real training split through the one real-data training path
        (sas.evaluation.protocol.train_on_real: cached in <cache>/real_runs by model, protocol and data); its top-1
        on the real val split is logged. context: sas.evaluation.protocol.EvalContext."""
        import logging

        from sas.evaluation.protocol import train_on_real

        self._data_key = {"data": context.data_key}
        net, result = train_on_real(self.model, self.training(progress), context)
        logging.getLogger(__name__).info("domain encoder: top-1 %.3f on the real val split", result["best_top1"])
        net.classifier = nn.Identity()  # penultimate features
        self._net = net.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        return self

    @torch.no_grad()
    def encode_tensors(self, images: torch.Tensor) -> torch.Tensor:
        from sas.data.augment import square_input
        if self._net is None:
            raise RuntimeError("DomainEncoder.fit(context) must run before encoding")
        dev = next(self._net.parameters()).device
        out = []
        for i in range(0, len(images), self.encode_batch):
            x = square_input(images[i:i + self.encode_batch].to(dev), self.image_size)    # (B, 3, S, S)
            f = self._net(x).flatten(1).float()
            out.append((f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)).cpu())
        return torch.cat(out)

    def encode_files(self, files: list[str], progress: bool = False) -> torch.Tensor:
        from sas.data.images import decode_all
        return self.encode_tensors(decode_all(files, self.image_size))

    def text_prototypes(self, class_names):
        raise ValueError("the domain encoder has no text tower: set encoder.prototypes=visual")
