"""ResNet-18 as in torchvision, with instance norm in place of batch norm.

    from sas.models.resnet import resnet
    model = resnet(num_classes=10, depth=18)        # 11,181,642 params
"""

from __future__ import annotations

from functools import partial

from torch import nn
from torchvision.models import resnet as tv

from sas.models.norm import make_norm

DEPTHS = {18: tv.resnet18, 34: tv.resnet34, 50: tv.resnet50}


def resnet(num_classes: int, depth: int = 18, norm: str = "instance") -> nn.Module:
    if depth not in DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
    return DEPTHS[depth](weights=None, num_classes=num_classes, norm_layer=partial(make_norm, norm))
