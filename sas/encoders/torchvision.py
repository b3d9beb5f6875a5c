"""A torchvision classifier's penultimate features as the embedding (K-Center's ResNet-50 space).

    enc = TorchvisionEncoder(arch="resnet50", weights="IMAGENET1K_V1")    # or a local state-dict file, or None
    feats = enc.encode_files(paths)        # (N, 2048) float32 (CPU), L2-normalised unless normalize=False

The paper's K-Center baseline (Sec. 4.8) runs on ResNet-50 features of the real
train split. Preprocessing is torchvision's ImageNet evaluation transform:
shorter side to `resize_size` (256), centre crop `image_size` (224), ImageNet
mean / std. Weights: a torchvision weights name (downloaded by torchvision when
missing), a local state-dict file (loaded with weights_only), or None (random
init, for tests). It has no text tower: prototypes are visual, or none when the
sampler uses no prototypes (K-Center, herding, random). `normalize: false` keeps the
raw pooled features: the space Sener & Savarese's (and DeepCore's) k-center greedy
measures Euclidean distances in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sas.encoders.base import Encoder

__all__ = ["TorchvisionEncoder"]


@dataclass
class TorchvisionEncoder(Encoder):
    arch: str = "resnet50"
    weights: str | None = "IMAGENET1K_V1"     # torchvision weights name, local state-dict file, or None
    image_size: int = 224
    resize_size: int = 256
    prototypes: str = "none"                  # none | visual
    normalize: bool = True                    # L2-normalise each embedding; false: the raw pooled features
    batch_size: int = 128
    device: str = "auto"
    init_seed: int = 0
    _net: nn.Module | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        import torchvision
        if self.arch not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(f"encoder.arch '{self.arch}' is not a torchvision classification model")
        if self.prototypes not in ("none", "visual"):
            raise ValueError(f"encoder.prototypes must be none or visual for a torchvision encoder, got "
                             f"'{self.prototypes}'")
        if self.weights is not None and Path(str(self.weights)).suffix in (".pt", ".pth", ".bin") \
                and not Path(str(self.weights)).is_file():
            raise FileNotFoundError(f"encoder.weights file not found: {self.weights}")
        if self.weights is not None and not self._local():
            self._enum()                                          # a weights name this architecture has

    def _local(self) -> bool:
        return Path(str(self.weights)).expanduser().is_file()

    def _enum(self):
        import torchvision
        names = torchvision.models.get_model_weights(self.arch)
        if str(self.weights) not in names.__members__:
            raise ValueError(f"encoder.weights '{self.weights}': torchvision's {self.arch} has "
                             f"{sorted(names.__members__)} (or give a state-dict file)")
        return names[str(self.weights)]

    def key_config(self) -> dict:
        from sas.cache import weights_id
        weights = (None if self.weights is None else weights_id(str(self.weights)) if self._local()
                   else {"torchvision": f"{self.arch}:{self.weights}", "url": self._enum().url})   # the url names
        return {"kind": "torchvision", "arch": self.arch, "weights": weights,                    # the file's hash
                "image_size": self.image_size, "resize_size": self.resize_size, "normalize": self.normalize,
                **({"init_seed": self.init_seed} if self.weights is None else {})}

    def _load(self) -> nn.Module:
        if self._net is None:
            import torchvision
            torch.manual_seed(self.init_seed)
            local = self.weights is not None and self._local()
            net = torchvision.models.get_model(self.arch, weights=None if local else self.weights)   # TORCH_HOME
            if local:
                net.load_state_dict(torch.load(self.weights, map_location="cpu", weights_only=True))
            net.fc = nn.Identity()                                       # penultimate (pooled) features
            dev = torch.device("cuda" if self.device == "auto" and torch.cuda.is_available() else
                               ("cpu" if self.device == "auto" else self.device))
            self._net = net.to(dev).eval()
        return self._net

    @torch.no_grad()
    def encode_tensors(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W), H = W >= image_size -> (N, d) L2-normalised (centre crop image_size)."""
        from sas.data.augment import normalize, to_unit_float
        net = self._load()
        dev = next(net.parameters()).device
        out = []
        for i in range(0, len(images), self.batch_size):
            x = to_unit_float(images[i:i + self.batch_size].to(dev))                # (B, 3, R, R)
            top = (x.shape[-1] - self.image_size) // 2
            x = x[..., top:top + self.image_size, top:top + self.image_size]          # (B, 3, S, S)
            f = net(normalize(x)).flatten(1).float()
            out.append((f / f.norm(dim=1, keepdim=True).clamp_min(1e-12) if self.normalize else f).cpu())
        return torch.cat(out) if out else torch.empty(0, 0)

    def encode_files(self, files: list[str], progress: bool = False) -> torch.Tensor:
        from tqdm.auto import tqdm

        from sas.data.images import decode_all
        chunk = 16 * self.batch_size                                              # bounded memory
        return torch.cat([self.encode_tensors(decode_all(files[i:i + chunk], self.resize_size))
                          for i in tqdm(range(0, len(files), chunk), desc="encode", disable=not progress)])

    def text_prototypes(self, class_names):
        raise ValueError("a torchvision encoder has no text tower: use a sampler without prototypes (kcenter, "
                         "herding, random) or encoder.prototypes=visual")
