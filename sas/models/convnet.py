"""ConvNet-D of the dataset-distillation literature (IDC / Minimax evaluation).

    from sas.models.convnet import ConvNet
    model = ConvNet(num_classes=10, depth=6, width=128, image_size=224)   # ConvNet-6, 754,570 params

depth x [conv3x3 (width, bias) -> norm -> ReLU -> pool 2], then a linear layer
on the flattened map (224 px, depth 6: 128 x 3 x 3 = 1152 features).
"""

from __future__ import annotations

import torch
from torch import nn

from sas.models.norm import make_norm


class ConvNet(nn.Module):
    def __init__(self, num_classes: int, depth: int = 6, width: int = 128, norm: str = "instance",
                 pooling: str = "avg", image_size: int = 224, in_channels: int = 3):
        super().__init__()
        if pooling not in ("avg", "max", "none"):
            raise ValueError(f"ConvNet pooling must be avg, max or none, got '{pooling}'")
        layers, channels, size = [], in_channels, image_size
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=True), make_norm(norm, width),
                       nn.ReLU(inplace=True)]
            if pooling != "none":
                layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
                size //= 2
            channels = width
        if size < 1:
            raise ValueError(f"ConvNet depth {depth} pools a {image_size} px image below 1 px")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, S, S) -> (B, num_classes)
        return self.classifier(torch.flatten(self.features(x), 1))
