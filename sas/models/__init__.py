"""Downstream classifiers, one file each, built from a config with `_target_` (Hydra) or by name.

    from sas.models import build_model
    net = build_model({"_target_": "sas.models.resnet_ap.ResNetAP", "depth": 10}, num_classes=10)
    net = build_model("resnet_ap", num_classes=10, depth=10)          # the same, by name (Python API)
    net = build_model(cfg.model, num_classes=10, image_size=224)      # conf/model/*.yaml

The class count (and, for models whose classifier depends on it, the image
size) is known only when the data is: configs are partial (`_partial_: true`)
and this function completes them.
"""

from __future__ import annotations

import inspect

from torch import nn

__all__ = ["MODELS", "build_model", "count_parameters"]

MODELS = {"convnet": "sas.models.convnet.ConvNet", "resnet_ap": "sas.models.resnet_ap.ResNetAP",
          "resnet": "sas.models.resnet.resnet"}


def build_model(spec, num_classes: int, image_size: int | None = None, **options) -> nn.Module:
    """spec: a model config (a mapping with `_target_`) or a name from MODELS; options add to / override it."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    if isinstance(spec, str):
        if spec not in MODELS:
            raise ValueError(f"unknown model '{spec}'; choose from {sorted(MODELS)}")
        spec = {"_target_": MODELS[spec]}
    spec = OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_config(spec) else dict(spec)
    if "_target_" not in spec:
        raise ValueError(f"a model config needs a _target_ (a class of sas.models), got keys {sorted(spec)}")
    spec.update(options, _partial_=True)
    make = instantiate(spec)
    takes_size = "image_size" in inspect.signature(make.func).parameters
    return make(num_classes=num_classes, **({"image_size": image_size} if takes_size and image_size else {}))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
