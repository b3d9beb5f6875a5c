"""ResNetAP: a ResNet that downsamples by average pooling (IDC's resnet_ap).

    from sas.models.resnet_ap import ResNetAP
    model = ResNetAP(num_classes=10, depth=10)      # ResNetAP-10, 4,910,922 params

Stem: conv7x7 stride 1 (64, no bias) -> norm -> ReLU -> avg pool 4.
BasicBlocks [1, 1, 1, 1] (depth 10) or [2, 2, 2, 2] (depth 18), widths 64/128/256/512;
a downsampling block average-pools (2) after its first conv, and its shortcut is
conv1x1 -> avg pool 2 -> norm. Global average pool, linear 512 -> classes.
"""

from __future__ import annotations

import torch
from torch import nn

from sas.models.norm import make_norm

BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2)}


class BasicBlockAP(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        down = [nn.AvgPool2d(2)] if stride == 2 else []
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), *down,
                                   make_norm(norm, cout), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1, bias=False), make_norm(norm, cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), *down, make_norm(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNetAP(nn.Module):
    def __init__(self, num_classes: int, depth: int = 10, norm: str = "instance", width: int = 64,
                 stem_pool: int = 4, in_channels: int = 3):
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"ResNetAP depth must be one of {sorted(BLOCKS)}, got {depth}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, stride=1, padding=3, bias=False),
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, S, S) -> (B, num_classes)
        x = self.layers(self.stem(x))                   # (B, 512, S/32, S/32)
        return self.classifier(x.mean(dim=(2, 3)))
