"""DINOv2 (Oquab et al. 2023) image embeddings through transformers: an image-only encoder (visual prototypes).

    enc = DINOv2Encoder(model="facebook/dinov2-base")            # hub id (commit-keyed) or a local folder
    feats = enc.encode_files(paths)                              # (N, 768) L2-normalised

Preprocessing as the checkpoint publishes it (its preprocessor_config.json, transformers' BitImageProcessor):
shorter side to size.shortest_edge (256) with its resample (3: bicubic), centre crop crop_size (224), scale to
[0, 1], ImageNet mean / std. The embedding is the model's pooler_output: the final layer-normed CLS token (the
`x_norm_clstoken` of facebookresearch/dinov2), L2-normalised. `config` builds a random-init model instead
(tests), with the preprocessing given by resize / crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sas.data.augment import IMAGENET_MEAN, IMAGENET_STD
from sas.encoders.base import Encoder

__all__ = ["DINOv2Encoder"]

RESAMPLE = {2: "bilinear", 3: "bicubic"}           # PIL resample codes of preprocessor configs


@dataclass
class DINOv2Encoder(Encoder):
    model: str | None = "facebook/dinov2-base"   # hub id or local folder (a transformers Dinov2Model)
    revision: str | None = None                  # of the hub repo (None: main)
    config: dict | None = None                   # Dinov2Config fields: random init instead (tests)
    init_seed: int = 0
    resize: int | None = None                    # preprocessing of a random-init model (a checkpoint has its own)
    crop: int | None = None
    prototypes: str = "visual"                   # image-only: the real train split's mean embedding per class
    batch_size: int = 128
    device: str = "auto"
    _loaded: tuple = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.prototypes not in ("visual", "none"):
            raise ValueError(f"DINOv2 has no text tower: encoder.prototypes must be visual or none, got "
                             f"'{self.prototypes}'")
        if (self.model is None) == (self.config is None):
            raise ValueError("give encoder.model (hub id or folder) or encoder.config (random init), not both")
        if self.config is not None and not (self.resize and self.crop):
            raise ValueError("a random-init DINOv2 (encoder.config) needs encoder.resize and encoder.crop")

    def key_config(self) -> dict:
        from sas.hub import resolve
        weights = resolve(str(self.model), self.revision).key if self.model else \
            {"config": dict(self.config), "init_seed": self.init_seed}
        return {"kind": "dinov2", "weights": weights, "feature": "pooler_output",
                "preprocess": self.preprocessing()}

    def preprocessing(self) -> dict:
        """{"resize", "crop", "interpolation", "mean", "std"}: the checkpoint's processor config, or the fields."""
        if self.model is None:
            return {"resize": self.resize, "crop": self.crop, "interpolation": "bicubic",
                    "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
        import json

        from sas.hub import hub_file
        cfg = json.loads(hub_file(str(self.model), ["preprocessor_config.json"], self.revision).read_text())
        size, crop = cfg.get("size", {}), cfg.get("crop_size", {})
        return {"resize": int(size.get("shortest_edge", size.get("height", 256))),
                "crop": int(crop.get("height", crop) if isinstance(crop, dict) else crop),
                "interpolation": RESAMPLE.get(int(cfg.get("resample", 3)), "bicubic"),
                "mean": list(cfg.get("image_mean", IMAGENET_MEAN)), "std": list(cfg.get("image_std", IMAGENET_STD))}

    def _load(self):
        if self._loaded is None:
            from transformers import Dinov2Config, Dinov2Model

            from sas.hub import load_pretrained
            dev = torch.device("cuda" if self.device == "auto" and torch.cuda.is_available() else
                               ("cpu" if self.device == "auto" else self.device))
            if self.model is not None:
                net = load_pretrained(Dinov2Model, str(self.model), self.revision)
            else:
                torch.manual_seed(self.init_seed)
                net = Dinov2Model(Dinov2Config(**self.config))
            self._loaded = (net.to(dev).eval(), self.preprocessing(), dev)
        return self._loaded

    @torch.no_grad()
    def encode_tensors(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> (N, d) normalised CLS embeddings."""
        from sas.data.augment import normalize, resize_center_crop
        net, pp, dev = self._load()
        out = []
        for i in range(0, len(images), self.batch_size):
            x = images[i:i + self.batch_size].to(dev).float() / 255                     # (B, 3, H, W)
            x = resize_center_crop(x, pp["resize"], pp["crop"], "shortest", pp["interpolation"])   # (B, 3, crop, crop)
            x = normalize(x, tuple(pp["mean"]), tuple(pp["std"]))
            f = net(pixel_values=x).pooler_output.float()                                  # (B, d)
            out.append((f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu())
        return torch.cat(out)

    def encode_files(self, files: list[str], progress: bool = False) -> torch.Tensor:
        """Image files -> (N, d): each decoded as 8-bit RGB at its own size, then preprocessed as above."""
        import numpy as np
        from tqdm.auto import tqdm

        from sas.data.images import open_rgb
        out = []
        for i in tqdm(range(0, len(files), self.batch_size), desc="encode", unit="batch", disable=not progress):
            batch = [torch.from_numpy(np.asarray(open_rgb(p)).copy()).permute(2, 0, 1)      # (3, H, W) each
                     for p in files[i:i + self.batch_size]]
            if len({b.shape for b in batch}) == 1:                   # a generated pool: one size, one batch
                out.append(self.encode_tensors(torch.stack(batch)))
            else:
                out += [self.encode_tensors(b[None]) for b in batch]
        return torch.cat(out)
