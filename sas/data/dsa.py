"""DSA (differentiable siamese augmentation) as IDC trains its CIFAR-10 evaluation models, batched on the device.

    aug = DSAugment(mean=CIFAR_MEAN, std=CIFAR_STD)          # strategy "color_crop_flip_scale_rotate"
    x = aug(images_uint8, generator)                         # (B, 3, H, W) uint8 -> normalised, augmented float

What snu-mllab/Efficient-Dataset-Condensation does for CIFAR-10 (argument.py:
dsa on, strategy color_crop_cutout_flip_scale_rotate with cutout removed when
CutMix is on; train.py: DiffAug(batch=False) applied to the normalised batch,
with its default single_aug). Per image unless said:
  flip        mirror with probability 0.5
  color       brightness x + (r - 0.5) * 1.0, then saturation
              (x - mean_c(x)) * 2r + mean_c(x) (mean over channels, per pixel), then
              contrast (x - mean(x)) * (r + 0.5) + mean(x) (one mean per image); r ~ U(0, 1) each
  then ONE of the rest, chosen per batch uniformly:
  crop        shift by (tx, ty), each an integer in [-int(0.125 S + 0.5), +int(0.125 S + 0.5)], through a
              1-pixel zero border (pixels shifted in from outside are 0, the normalised mean)
  scale       affine grid diag(sx, sy), sx, sy ~ U(1/1.2, 1.2), bilinear, zero padding
  rotate      affine grid rotation by U(-15, 15) degrees, bilinear, zero padding
The per-batch choice is drawn on the device and applied with torch.where, so no
step waits on the host.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sas.data.augment import normalize, to_unit_float

__all__ = ["DSAugment", "CIFAR_MEAN", "CIFAR_STD"]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)      # IDC data.py MEANS['cifar']
CIFAR_STD = (0.2023, 0.1994, 0.2010)
GEOMETRIC = ("crop", "scale", "rotate")


class DSAugment(nn.Module):
    def __init__(self, strategy: str = "color_crop_flip_scale_rotate", mean=CIFAR_MEAN, std=CIFAR_STD,
                 flip_prob: float = 0.5, brightness: float = 1.0, saturation: float = 2.0, contrast: float = 0.5,
                 crop_pad: float = 0.125, scale: float = 1.2, rotate: float = 15.0):
        super().__init__()
        parts = [p for p in strategy.lower().split("_") if p]
        unknown = sorted(set(parts) - {"color", "flip", *GEOMETRIC})
        if unknown:
            raise ValueError(f"eval.dsa_strategy: unknown part(s) {unknown}; use color, flip, crop, scale, rotate "
                             "(cutout is off under CutMix, as in IDC)")
        self.flip, self.color = "flip" in parts, "color" in parts
        self.geometric = [p for p in GEOMETRIC if p in parts]
        self.mean, self.std = tuple(mean), tuple(std)
        self.flip_prob, self.brightness, self.saturation, self.contrast = flip_prob, brightness, saturation, contrast
        self.crop_pad, self.scale, self.rotate = crop_pad, scale, rotate

    # ------------------------------------------------------------------ draws
    def draws(self, n: int, h: int, w: int, g: torch.Generator | None, device) -> dict[str, Tensor]:
        """Every random number of one batch, on the device."""
        def u(*shape):
            return torch.rand(*shape, generator=g, device=device)
        sx, sy = int(h * self.crop_pad + 0.5), int(w * self.crop_pad + 0.5)
        return {"flip": u(n) < self.flip_prob, "color": u(n, 3),
                "shift": torch.stack([torch.randint(-sx, sx + 1, (n,), generator=g, device=device),
                                      torch.randint(-sy, sy + 1, (n,), generator=g, device=device)], 1),
                "scale": u(n, 2) * (self.scale - 1 / self.scale) + 1 / self.scale,
                "angle": (u(n) - 0.5) * 2 * math.radians(self.rotate),
                "choice": torch.randint(max(1, len(self.geometric)), (1,), generator=g, device=device)}

    # ------------------------------------------------------------------ ops (x: normalised (B, C, H, W))
    @staticmethod
    def shift(x: Tensor, shift: Tensor) -> Tensor:
        """out[b, :, i, j] = pad1(x)[b, :, clamp(i + tx + 1), clamp(j + ty + 1)], shift (B, 2) integers."""
        n, _, h, w = x.shape
        pad = F.pad(x, (1, 1, 1, 1))                                                   # (B, C, H+2, W+2)
        rows = (torch.arange(h, device=x.device) + shift[:, :1] + 1).clamp(0, h + 1)   # (B, H)
        cols = (torch.arange(w, device=x.device) + shift[:, 1:] + 1).clamp(0, w + 1)   # (B, W)
        b = torch.arange(n, device=x.device)[:, None, None]
        return pad.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    @staticmethod
    def affine(x: Tensor, theta: Tensor) -> Tensor:
        """Resample x on the affine grid theta (B, 2, 3): bilinear, zeros outside."""
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def apply(self, x: Tensor, d: dict[str, Tensor]) -> Tensor:
        n = x.shape[0]
        if self.flip:
            x = torch.where(d["flip"].view(n, 1, 1, 1), x.flip(3), x)
        if self.color:
            r = d["color"].to(x.dtype).view(n, 3, 1, 1, 1)
            x = x + (r[:, 0] - 0.5) * self.brightness
            m = x.mean(dim=1, keepdim=True)
            x = (x - m) * (r[:, 1] * self.saturation) + m
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - m) * (r[:, 2] + self.contrast) + m
        if not self.geometric:
            return x
        outs = []
        zeros = torch.zeros(n, device=x.device, dtype=x.dtype)
        for kind in self.geometric:
            if kind == "crop":
                outs.append(self.shift(x, d["shift"]))
            elif kind == "scale":
                s = d["scale"].to(x.dtype)
                theta = torch.stack([torch.stack([s[:, 0], zeros, zeros], 1),
                                     torch.stack([zeros, s[:, 1], zeros], 1)], 1)        # (B, 2, 3)
                outs.append(self.affine(x, theta))
            else:
                a = d["angle"].to(x.dtype)
                theta = torch.stack([torch.stack([a.cos(), -a.sin(), zeros], 1),
                                     torch.stack([a.sin(), a.cos(), zeros], 1)], 1)      # (B, 2, 3)
                outs.append(self.affine(x, theta))
        out = outs[-1]
        for i in range(len(outs) - 2, -1, -1):                                          # the batch's one choice
            out = torch.where(d["choice"] == i, outs[i], out)
        return out

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """uint8 (B, 3, H, W) -> normalised (mean, std), then DSA; (B, 3, H, W) float."""
        x = normalize(to_unit_float(images), self.mean, self.std)
        n, _, h, w = x.shape
        return self.apply(x, self.draws(n, h, w, generator, x.device))
