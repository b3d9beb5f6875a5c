import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # tests/reference.py
os.environ.setdefault("WANDB_MODE", "offline")


def on_circle(*degrees):
    """Unit rows (n, 2) at the given angles in degrees: angular distance = angle difference."""
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    return torch.from_numpy(np.stack([np.cos(a), np.sin(a)], axis=1))


def rad(x):
    return float(np.radians(x))


def clustered(seed, classes=4, per_class=12, dim=8, dtype=torch.float64, spread=0.8):
    """A pool with CLIP-like geometry: image rows around noisy copies of their class prototype."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(classes, dim, generator=g, dtype=dtype)
    labels = torch.arange(classes).repeat_interleave(per_class)
    feats = text[labels] + spread * torch.randn(classes * per_class, dim, generator=g, dtype=dtype)
    perm = torch.randperm(classes * per_class, generator=g)
    return feats[perm], labels[perm], text


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
