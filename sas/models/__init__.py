"""Downstream classifiers, one file each, built by name.

    from sas.models import build_model
    model = build_model("resnet_ap", num_classes=10, depth=10)   # also: convnet, resnet
"""

from __future__ import annotations

from torch import nn

__all__ = ["MODELS", "build_model", "count_parameters"]


def _convnet(**kw):
    from sas.models.convnet import ConvNet
    return ConvNet(**kw)


def _resnet_ap(image_size=None, **kw):  # global pooling: any input size
    from sas.models.resnet_ap import ResNetAP
    return ResNetAP(**kw)


def _resnet(image_size=None, **kw):  # global pooling: any input size
    from sas.models.resnet import resnet
    return resnet(**kw)


MODELS = {"convnet": _convnet, "resnet_ap": _resnet_ap, "resnet": _resnet}


def build_model(name: str, num_classes: int, **options) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; choose from {sorted(MODELS)}")
    return MODELS[name](num_classes=num_classes, **options)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
