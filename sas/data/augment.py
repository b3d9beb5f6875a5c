"""The IDC train augmentation and CutMix, batched, on the images' device.

    aug = TrainAugment(size=224)
    x = aug(images_uint8, generator)            # (B, 3, H, W) uint8 -> (B, 3, 224, 224) normalised float
    x, y_a, y_b, lam = cutmix(x, y, beta=1.0, prob=1.0, rng=np_rng, generator=device_generator)
    loss = lam * ce(model(x), y_a) + (1 - lam) * ce(model(x), y_b)
    x = resize_center_crop(unit, 256, 224)       # encoders' evaluation preprocessing (shorter side, centre crop)
    x = square_input(images_uint8, 32)          # a trained classifier's input: resized, normalised

Per image, as torchvision's transforms would do one image at a time:
RandomResizedCrop(size, scale, ratio) -> horizontal flip (p 0.5) ->
ColorJitter(brightness, contrast, saturation; own random order per image) ->
PCA lighting (AlexNet eigen-decomposition of ImageNet RGB) -> normalise.
The colour jitter is IDC's own (not torchvision's): lerps with no clamping,
in a random order drawn per image.
Crops are resampled with roi_align (bilinear, averaged over the bin: smooth
when shrinking). Per-image draws use a torch Generator on the images' device;
CutMix's per-batch box uses a numpy Generator on the host: no step waits on a
device-to-host copy.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TrainAugment", "normalize", "cutmix", "to_unit_float",
           "resize_center_crop", "square_input"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
GRAY = (0.299, 0.587, 0.114)


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float in [0, 1]."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


_CONSTANTS: dict = {}


def constant(values, device, dtype=torch.float32, shape=None) -> Tensor:
    """A small constant tensor, made once per (values, device, dtype) and reused: no host-to-device copy
    (and so no host sync on a GPU) per step."""
    key = (tuple(values) if not isinstance(values[0], (tuple, list)) else tuple(map(tuple, values)),
           str(device), dtype, shape)
    t = _CONSTANTS.get(key)
    if t is None:
        t = torch.tensor(values, dtype=dtype).to(device)
        t = t.view(shape) if shape is not None else t
        _CONSTANTS[key] = t
    return t


def normalize(x: Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Tensor:
    m = constant(tuple(mean), x.device, x.dtype, (1, 3, 1, 1))
    s = constant(tuple(std), x.device, x.dtype, (1, 3, 1, 1))
    return (x - m) / s


def resize_center_crop(x: Tensor, resize: int, crop: int, mode: str = "shortest",
                       interpolation: str = "bicubic") -> Tensor:
    """float (B, 3, H, W) in [0, 1] -> (B, 3, crop, crop): the shorter side to `resize` (mode shortest; squash:
    straight to resize x resize), antialiased and clamped to [0, 1], then the centre crop (torchvision's
    Resize + CenterCrop on a batch: the evaluation preprocessing of CLIP, EVA and DINOv2 checkpoints)."""
    h, w = x.shape[-2:]
    scale = resize / min(h, w)
    size = (resize, resize) if mode == "squash" else (max(resize, round(h * scale)), max(resize, round(w * scale)))
    x = nn.functional.interpolate(x, size=size, mode=interpolation, antialias=True, align_corners=False).clamp_(0, 1)
    top, left = (x.shape[-2] - crop) // 2, (x.shape[-1] - crop) // 2
    return x[..., top:top + crop, left:left + crop]


def square_input(images: Tensor, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Tensor:
    """uint8 (or float in [0, 1]) (B, 3, H, W) -> normalised float (B, 3, size, size), resized (bilinear,
    antialiased) when not size x size: what a classifier trained at `size` takes (the domain encoder, the
    difficulty classifier)."""
    x = to_unit_float(images)
    if x.shape[-2:] != (size, size):
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x, mean, std)


def _gray(x: Tensor) -> Tensor:
    w = constant(GRAY, x.device, x.dtype, (1, 3, 1, 1))
    return (x * w).sum(1, keepdim=True)  # (B, 1, H, W)


def _uniform(lo: float, hi: float, n: int, g, device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


class TrainAugment(nn.Module):
    """The IDC training augmentation chain (see module docstring); no parameters, no state."""

    def __init__(self, size: int = 224, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True,
                 brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 lighting: float = 0.1, mean=IMAGENET_MEAN, std=IMAGENET_STD, attempts: int = 10):
        super().__init__()
        self.size, self.scale, self.ratio, self.flip = size, tuple(scale), tuple(ratio), flip
        self.jitter = (brightness, contrast, saturation)
        self.lighting, self.mean, self.std, self.attempts = lighting, tuple(mean), tuple(std), attempts

    def crop_boxes(self, n: int, h: int, w: int, g, device) -> Tensor:
        """RandomResizedCrop parameters per image -> (n, 4) boxes x1, y1, x2, y2 in pixels.

        torchvision's rule, vectorised: up to `attempts` draws of (area, log-ratio);
        the first that fits wins, else the centre crop at the clamped ratio.
        """
        a = self.attempts
        area = h * w * _uniform(self.scale[0], self.scale[1], n * a, g, device).view(n, a)
        logr = _uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), n * a, g, device).view(n, a)
        r = torch.exp(logr)
        cw = torch.sqrt(area * r).round()
        ch = torch.sqrt(area / r).round()
        ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)                    # (n, a)
        first = ok.int().argmax(1)                                          # first fitting draw
        rows = torch.arange(n, device=device)
        cw, ch, found = cw[rows, first], ch[rows, first], ok.any(1)
        # fallback: centre crop of the whole image at the ratio clamped to the allowed range
        in_ratio = w / h
        fw = float(w if self.ratio[0] <= in_ratio <= self.ratio[1] else
                   (round(h * self.ratio[0]) if in_ratio < self.ratio[0] else round(h * self.ratio[1])))
        fh = float(h if self.ratio[0] <= in_ratio <= self.ratio[1] else
                   (round(w / self.ratio[0]) if in_ratio < self.ratio[0] else round(w / self.ratio[1])))
        fw, fh = min(fw, w), min(fh, h)
        cw = torch.where(found, cw, torch.full_like(cw, fw))
        ch = torch.where(found, ch, torch.full_like(ch, fh))
        x1 = torch.where(found, torch.floor(torch.rand(n, generator=g, device=device) * (w - cw + 1)),
                         torch.full_like(cw, (w - fw) // 2))
        y1 = torch.where(found, torch.floor(torch.rand(n, generator=g, device=device) * (h - ch + 1)),
                         torch.full_like(ch, (h - fh) // 2))
        return torch.stack([x1, y1, x1 + cw, y1 + ch], 1)

    def jitter_draws(self, n: int, g: torch.Generator | None, device) -> tuple[Tensor, Tensor]:
        """Per image: the factors (B, 3) of brightness / contrast / saturation, f ~ U(1 - s, 1 + s)
        (s = 0: f = 1, the identity), and the order (B, 3) in which the three ops run."""
        factors = torch.stack([_uniform(1 - s, 1 + s, n, g, device) for s in self.jitter], 1)
        order = torch.rand(n, 3, generator=g, device=device).argsort(1)
        return factors, order

    def color_jitter(self, x: Tensor, g: torch.Generator | None = None, draws: tuple[Tensor, Tensor] | None = None
                     ) -> Tensor:
        """IDC's ColorJitter (its utils.py), batched: per image, brightness / contrast / saturation in a
        random order of their own, each a lerp with a factor f ~ U(1 - s, 1 + s), no clamping:
            brightness  f * x
            contrast    f * x + (1 - f) * mean(gray(x))     (one mean per image)
            saturation  f * x + (1 - f) * gray(x)           (per pixel)
        (B, 3, S, S) float -> same.
        """
        n = x.shape[0]
        factors, order = draws if draws is not None else self.jitter_draws(n, g, x.device)   # (B, 3) each
        for step in range(3):
            op = order[:, step].view(n, 1, 1, 1)                                          # (B, 1, 1, 1)
            f = factors.gather(1, order[:, step:step + 1]).view(n, 1, 1, 1)               # that op's factor
            gray = _gray(x)                                                               # (B, 1, S, S)
            target = torch.where(op == 0, torch.zeros_like(gray),
                                 torch.where(op == 1, gray.mean(dim=(1, 2, 3), keepdim=True), gray))
            x = f * x + (1 - f) * target
        return x

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """uint8 (B, 3, H, W) -> (B, 3, size, size) normalised float.

        generator: every per-image draw (crop, flip, jitter factors and order, lighting), on the
        images' device.
        """
        from torchvision.ops import roi_align

        x = to_unit_float(images)                                           # (B, 3, H, W) in [0, 1]
        n, _, h, w = x.shape
        dev, g = x.device, generator
        boxes = self.crop_boxes(n, h, w, g, dev)                            # (B, 4)
        rois = torch.cat([torch.arange(n, device=dev, dtype=x.dtype)[:, None], boxes.to(x.dtype)], 1)
        x = roi_align(x, rois, output_size=(self.size, self.size), spatial_scale=1.0,
                      sampling_ratio=-1, aligned=True)                      # (B, 3, S, S)
        if self.flip:
            flip = torch.rand(n, generator=g, device=dev) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = self.color_jitter(x, g)
        if self.lighting > 0:
            alpha = torch.randn(n, 3, generator=g, device=dev) * self.lighting      # (B, 3)
            vec = constant(PCA_EIGVEC, dev)
            val = constant(PCA_EIGVAL, dev)
            rgb = (vec[None] * (alpha * val)[:, None, :]).sum(-1)                   # (B, 3)
            x = x + rgb[:, :, None, None]
        return normalize(x, self.mean, self.std)


def cutmix(x: Tensor, y: Tensor, beta: float, prob: float, rng: np.random.Generator,
           generator: torch.Generator | None = None):
    """CutMix on a batch -> (mixed x, y_a, y_b, lam); the loss is lam * CE(y_a) + (1 - lam) * CE(y_b).

    One box per batch (as in the IDC code): lam ~ Beta(beta, beta), box of side
    sqrt(1 - lam) centred uniformly and clipped, pasted from a permuted batch;
    lam is then the kept area. With probability 1 - prob the batch is unchanged.
    The host rng draws the box (plain numbers); the partner permutation is drawn on the
    images' device (`generator`, a torch Generator there), so no step copies it over.
    """
    if beta <= 0 or rng.random() >= prob:
        return x, y, y, 1.0
    n, _, h, w = x.shape
    lam = rng.beta(beta, beta)
    perm = torch.randperm(n, generator=generator, device=x.device)
    cut = math.sqrt(1.0 - lam)
    cw, ch = int(w * cut), int(h * cut)
    cx, cy = int(rng.integers(w)), int(rng.integers(h))
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x = x.clone()
    x[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    lam = 1.0 - (x2 - x1) * (y2 - y1) / (w * h)
    return x, y, y[perm], lam
