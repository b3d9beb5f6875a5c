"""Zero host-device syncs per steady-state training step in the three training modules (counted on the CPU
by benchmarks/syncs.py: every call that would make the host wait for a GPU), and the counter itself."""

import random
import warnings
from collections import deque

import pytest
import pytorch_lightning as pl
import torch

from syncs import StepSyncs, SyncCounter     # benchmarks/syncs.py

warnings.filterwarnings("ignore", ".*does not have many workers.*")


def test_the_counter_sees_what_would_sync():
    x = torch.arange(6.0)
    with SyncCounter() as c:
        x.sum().item(), x.tolist(), bool(x[0] > 1), x[x > 2], torch.tensor([1.0], device="cpu"), x.nonzero()
        x.sum() * 2, x[torch.tensor([0, 1])], torch.where(x > 2, x, 0)           # these do not sync
    assert c.calls == {"item": 1, "tolist": 1, "__bool__": 1, "__getitem__[bool mask]": 1,
                       "tensor(device=...)": 1, "nonzero": 1}


def fit_counting(module, datamodule, steps=8, callbacks=(), **trainer_kw):
    counter = StepSyncs()
    pl.Trainer(max_steps=steps, callbacks=[*callbacks, counter], logger=False, enable_checkpointing=False,
               enable_model_summary=False, enable_progress_bar=True, accelerator="cpu", devices=1,
               num_sanity_val_steps=0, limit_val_batches=0, **trainer_kw).fit(module, datamodule)
    return counter.per_step[2:]          # steady state: after two warm-up steps, within the first epoch (a new
                                         # epoch's sampler draws its shuffle on the host: not a device sync)


@pytest.mark.parametrize("augment", ["idc", "dsa"])
def test_classifier_steps_do_not_sync(augment):
    from sas.data.real import load_digits_split
    from sas.evaluation.classifier import Classifier
    from sas.evaluation.datamodule import ResidentDataModule
    from sas.evaluation.protocol import Protocol
    from sas.models import build_model
    train, val = load_digits_split("train", 16, per_class=12), load_digits_split("val", 16, per_class=2)
    protocol = Protocol(image_size=16, augment=augment, cutmix_prob=0.5)
    module = Classifier(build_model("resnet_ap", 10, depth=10, width=8, stem_kernel=3, stem_pool=1), epochs=3)
    dm = ResidentDataModule(train, val, protocol.train_augment(), 8, 64, 0, protocol.mean, protocol.std)  # 15 steps
    steps = fit_counting(module, dm, steps=10)
    assert len(steps) >= 6 and all(not s for s in steps), steps


def test_minimax_steps_do_not_sync_with_ema():
    from sas.generators.ema import EMA
    from sas.generators.latents import LatentDataModule
    from sas.generators.minimax import MinimaxModule
    from test_minimax import tiny
    g = torch.Generator().manual_seed(0)
    moments = torch.randn(96, 2, 2, 4, 8, 8, generator=g).half()
    labels = torch.arange(4).repeat(24)
    module = MinimaxModule(tiny(), lr=1e-3, memory_size=4, difffit_blocks=1)
    steps = fit_counting(module, LatentDataModule(moments, labels, labels + 2, batch_size=8), steps=10,
                         callbacks=[EMA(decay=0.99)])
    assert len(steps) >= 6 and all(not s for s in steps), steps


def test_ddpm_steps_do_not_sync_with_ema_and_clipping():
    from sas.generators.ema import EMA
    from sas.generators.ddpm import DDPMModule, ImageDataModule
    from test_generator_recipes import tiny_unet
    images = torch.randint(0, 256, (96, 3, 8, 8), dtype=torch.uint8)
    module = DDPMModule(tiny_unet(), warmup_steps=2)
    steps = fit_counting(module, ImageDataModule(images, torch.arange(3).repeat(32), batch_size=8), steps=10,
                         callbacks=[EMA(decay=0.999, from_start=False, warmup_inv_gamma=1.0)], gradient_clip_val=1.0)
    assert len(steps) >= 6 and all(not s for s in steps), steps


def test_ring_buffer_memories_equal_the_fifo_lists_of_the_equations():
    """Against a literal reference: per class c in the batch (sorted), with lists of the last M rows,
    pos += lp (1 - min cos(x_c, real_c)) / |classes|, neg += ln max cos(x_c, pred_c) / |classes|, then append."""
    from sas.generators.minimax import MinimaxMemory, cosine_matrix
    rng, M = random.Random(0), 3
    mem, ref_real, ref_pred = MinimaxMemory(M), {}, {}
    for _ in range(25):
        labels = [rng.randrange(3) for _ in range(rng.randrange(1, 7))]
        x = torch.randn(len(labels), 2, 3, dtype=torch.float64)
        r = torch.randn(len(labels), 2, 3, dtype=torch.float64)
        pos, neg = mem.terms(x, r, torch.tensor(labels), 0.002, 0.008, labels)
        rp = rn = 0.0
        classes = sorted(set(labels))
        for c in classes:
            rows = [i for i, y in enumerate(labels) if y == c]
            if ref_pred.get(c):
                rp += 0.002 * (1 - cosine_matrix(x[rows], torch.stack(list(ref_real[c]))).min()) / len(classes)
                rn += 0.008 * cosine_matrix(x[rows], torch.stack(list(ref_pred[c]))).max() / len(classes)
            ref_real.setdefault(c, deque(maxlen=M)).extend(r[rows].flatten(1))
            ref_pred.setdefault(c, deque(maxlen=M)).extend(x[rows].flatten(1))
        assert float(pos) == pytest.approx(float(rp), rel=1e-5) and float(neg) == pytest.approx(float(rn), rel=1e-5)
