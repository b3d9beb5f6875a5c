"""RDED's ShufflePatches, batched on the device: each image cut into `factor` strips of equal width that are put
back in a random order, then the same for rows (an own order per image and per axis).

    x = shuffle_patches(images, factor=2, generator=g)     # (B, C, H, W) -> (B, C, factor*(H//factor), ...)

As LINs-lab/RDED validation/utils.py ShufflePatches: strips are W // factor wide (a remainder of W is
dropped), columns first, then rows. Its RandomResizedCrop follows, so the size change is absorbed.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["shuffle_patches"]


def _shuffle_last(x: Tensor, factor: int, g) -> Tensor:
    n, w = x.shape[0], x.shape[-1]
    tw = w // factor
    order = torch.rand(n, factor, generator=g, device=x.device).argsort(1)                  # (B, factor)
    cols = (order[:, :, None] * tw + torch.arange(tw, device=x.device)).reshape(n, factor * tw)  # (B, f*tw)
    index = cols.view(n, *([1] * (x.dim() - 2)), factor * tw).expand(*x.shape[:-1], factor * tw)
    return x.gather(-1, index)


def shuffle_patches(x: Tensor, factor: int, generator: torch.Generator | None = None) -> Tensor:
    if factor <= 1:
        return x
    x = _shuffle_last(x, factor, generator)                                   # columns
    return _shuffle_last(x.transpose(-1, -2), factor, generator).transpose(-1, -2)   # rows
