"""ResNetAP: a ResNet that downsamples by average pooling (IDC's resnet_ap).

    from sas.models.resnet_ap import ResNetAP
    model = ResNetAP(num_classes=10, depth=10)                                   # ResNetAP-10, 4,910,922 params
    model = ResNetAP(num_classes=10, depth=10, width=32, stem_kernel=3, stem_pool=1)   # IDC's CIFAR variant

As snu-mllab/Efficient-Dataset-Condensation `models/resnet_ap.py` computes it:
stem conv (7x7 at 224 px, 3x3 for small images; stride 1, no bias) -> norm ->
ReLU -> avg pool `stem_pool` (4 at 224 px, 2 at 65-128 px, none for CIFAR);
BasicBlocks [1, 1, 1, 1] (depth 10) or [2, 2, 2, 2] (depth 18), widths
width x 1/2/4/8. A downsampling block runs
    conv1 -> norm -> ReLU -> avg pool 2 -> conv2 -> norm   (+ shortcut) -> ReLU
with the pool AFTER the first norm and ReLU, and its shortcut is
conv1x1 -> avg pool 2 -> norm. Global average pool, linear -> classes.
Init (IDC): every conv weight ~ normal(0, sqrt(2 / (k * k * C_out))), every
norm weight 1 and bias 0; the linear layer keeps PyTorch's default.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sas.models.norm import make_norm

BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2)}


class BasicBlockAP(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"), make_norm(norm, cout),
                                   nn.ReLU(inplace=True), *([nn.AvgPool2d(2)] if stride == 2 else []))
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1, bias=norm == "none"), make_norm(norm, cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=norm == "none"), *([nn.AvgPool2d(2)] if stride == 2 else []), make_norm(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, cin, H, W) -> (B, cout, H / stride, W / stride)
        return torch.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def idc_init_(model: nn.Module) -> nn.Module:
    """IDC's initialisation: conv ~ N(0, sqrt(2 / (k_h k_w C_out))), norm weight 1 / bias 0 (in place)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


class ResNetAP(nn.Module):
    def __init__(self, num_classes: int, depth: int = 10, norm: str = "instance", width: int = 64,
                 stem_kernel: int = 7, stem_pool: int = 4, in_channels: int = 3):
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"ResNetAP depth must be one of {sorted(BLOCKS)}, got {depth}")
        if stem_kernel not in (3, 7):
            raise ValueError(f"ResNetAP stem_kernel must be 3 or 7, got {stem_kernel}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, stem_kernel, stride=1, padding=stem_kernel // 2,
                                            bias=norm == "none"),
                                  make_norm(norm, width), nn.ReLU(inplace=True),
                                  nn.AvgPool2d(stem_pool) if stem_pool > 1 else nn.Identity())
        stages, cin = [], width
        for i, n in enumerate(BLOCKS[depth]):
            cout = width * 2 ** i
            for j in range(n):
                stages.append(BasicBlockAP(cin, cout, 2 if (i > 0 and j == 0) else 1, norm))
                cin = cout
        self.layers = nn.Sequential(*stages)
        self.classifier = nn.Linear(cin, num_classes)
        idc_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, S, S) -> (B, num_classes)
        x = self.layers(self.stem(x))                   # (B, 8 * width, S', S')
        return self.classifier(x.mean(dim=(2, 3)))
