import atexit
import os
import shutil
import sys
import tempfile

# Offline, with caches of our own, before any library reads them at import time: a Hugging Face cache and a torch
# hub folder that the tests fill with emulated published weights (tests/published.py), never the user's.
_HOMES = tempfile.mkdtemp(prefix="sas-tests-")
atexit.register(shutil.rmtree, _HOMES, ignore_errors=True)
os.environ["HF_HOME"] = os.path.join(_HOMES, "hf")
os.environ["TORCH_HOME"] = os.path.join(_HOMES, "torch")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "offline")
if os.environ.get("PYTEST_XDIST_WORKER"):        # one core per xdist worker (its subprocesses too): no oversubscription
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))  # tests/reference.py, tests/published.py, tests/wandb_offline.py
sys.path.insert(1, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))   # benchmarks/syncs.py
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def hf_home():
    """The tests' HF_HOME (a Hugging Face cache); tests/published.py writes emulated published repos into it."""
    return os.environ["HF_HOME"]


@pytest.fixture(scope="session")
def openai_clip(hf_home):
    """open_clip's file for ViT-B-32-quickgelu / openai in the cache (the real architecture, random weights)."""
    from published import open_clip_tag
    return open_clip_tag(hf_home)


@pytest.fixture
def fresh_hub():
    """Forget resolved hub ids (a test that rewrites a repo's snapshot sees the new commit)."""
    from sas.hub import resolve
    resolve.cache_clear()
    yield
    resolve.cache_clear()
