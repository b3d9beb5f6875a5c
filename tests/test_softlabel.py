"""Soft-label evaluation: RDED's loss, schedule, batch sizes, ShufflePatches and evaluation window, written
from their equations; the teacher stays frozen; a teacher trained on real digits is cached."""

import math

import pytest
import torch
from torch import nn

from sas.data.patches import shuffle_patches
from sas.data.real import load_digits_split
from sas.evaluation.protocol import EvalContext, evaluate
from sas.evaluation.protocol import train_on_real
from sas.evaluation.softlabel import (SoftLabelProtocol, rded_cosine, soft_loss,
                                      weight_decay_groups)


def test_soft_losses_follow_their_definitions():
    g = torch.Generator().manual_seed(0)
    s, t, T = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g), 4.0
    p = torch.exp(t / T) / torch.exp(t / T).sum(1, keepdim=True)
    q = torch.exp(s / T) / torch.exp(s / T).sum(1, keepdim=True)
    kl = (p * (p.log() - q.log())).sum() / 5                     # KL(p || q), averaged over the batch
    torch.testing.assert_close(soft_loss(s, t, T, "kl"), kl)
    torch.testing.assert_close(soft_loss(s, t, T, "soft_ce"), -(p * q.log()).sum() / 5)
    assert soft_loss(t, t, T, "kl").abs() < 1e-6                 # a student that matches has no KL loss


def test_rded_schedule_and_batch_sizes():
    assert rded_cosine(0, 300) == 1.0 and rded_cosine(300, 300) == pytest.approx(0.5)
    assert rded_cosine(150, 300) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert rded_cosine(301, 300) == 0.0
    p = SoftLabelProtocol()
    assert [p.batch_size_for(ipc, c) for ipc, c in ((1, 10), (10, 10), (50, 10), (10, 1000), (50, 1000), (1, 5))] \
        == [10, 50, 100, 100, 200, 5]
    assert p.batch_size_for(20, 10) == p.batch_size                # other IPCs: the named default
    with pytest.raises(ValueError, match="eval.loss must be one of"):
        SoftLabelProtocol(loss="mse")
    with pytest.raises(ValueError, match="eval.augment must be one of rded, rrc, none, got 'idc'"):
        SoftLabelProtocol(augment="idc")


def test_weight_decay_only_on_weight_matrices():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, plain = weight_decay_groups(net, 0.01)
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[3].weight)}
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 4   # biases, norm weight and bias


def test_shuffle_patches_permutes_strips_per_image():
    from itertools import permutations
    x = torch.arange(36, dtype=torch.float32).view(1, 1, 6, 6).repeat(32, 2, 1, 1)        # (32, 2, 6, 6)
    out = shuffle_patches(x, 3, torch.Generator().manual_seed(1))
    strips = lambda order: [2 * i + j for i in order for j in range(2)]                  # noqa: E731
    seen = set()
    for a, b in zip(x, out):
        found = [(r, c) for r in permutations(range(3)) for c in permutations(range(3))
                 if torch.equal(b, a[:, strips(r)][:, :, strips(c)])]                    # rows, then columns
        assert len(found) == 1                                    # exactly a strip permutation per axis
        seen.add(found[0])
    assert len(seen) > 8                                          # an own order per image and axis


def small_protocol(**kw):
    base = dict(epochs=10, evaluations=10, repeats=1, image_size=16, progress=False, accelerator="cpu",
                eval_batch_size=600, batch_size=32, patch_factor=2,
                teacher={"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 16},
                hard={"epochs": 6, "evaluations": 1, "augment": "none", "cutmix_prob": 0.0, "batch_size": 128})
    return SoftLabelProtocol(**{**base, **kw})


def test_trained_teacher_is_cached_frozen_and_evaluation_waits_for_the_last_fifth(tmp_path):
    train, val = load_digits_split("train", 16), load_digits_split("val", 16)
    ctx = EvalContext(lambda: train, lambda: val, str(tmp_path), {"name": "digits"})
    protocol = small_protocol()
    protocol.prepare(ctx)
    teacher = protocol._teacher
    before = [p.detach().clone() for p in teacher.parameters()]
    net, result = train_on_real(protocol.teacher, protocol.hard_protocol(), ctx)
    assert result["best_top1"] > 0.5                             # a real teacher, trained on the real digits
    assert len(list((tmp_path / "real_runs").glob("*.pt"))) == 1                     # trained once, cached
    distilled = load_digits_split("train", 16, per_class=3)
    out = evaluate(distilled, val, {"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 8},
                   protocol, ipc=3, context=ctx)
    assert [e for e, _ in out.repeats[0]["curve"]] == [9, 10]  # epochs 9 and 10 of 10 (from 80% on)
    assert not teacher.training and all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    assert out.protocol["temperature"] == 20.0 and "_teacher" not in out.protocol


def test_ddrs_formula():
    from sas.evaluation.ddranking import ddranking_scores, ddrs
    e = math.e
    assert ddrs(hlr=0.0, ior=0.0) == pytest.approx((1 - 1 / e) / (e - 1 / e))
    assert ddrs(hlr=0.0, ior=2.0) == pytest.approx(1.0) and ddrs(hlr=2.0, ior=0.0) == pytest.approx(0.0)
    assert ddrs(hlr=0.1, ior=0.3, weight=0.25) == pytest.approx(
        (math.exp(0.25 * 0.3 - 0.75 * 0.1) - 1 / e) / (e - 1 / e))
    s = ddranking_scores(0.9, [0.5, 0.7], [0.8, 0.6], [0.6, 0.6])
    assert s["hlr"] == pytest.approx([0.4, 0.2]) and s["ior"] == pytest.approx([0.2, 0.0])
    assert s["hlr_mean"] == pytest.approx(0.3) and s["hlr_std"] == pytest.approx(0.1)   # population std


def test_distill_run_scores_every_sampler_with_ddranking(tmp_path, capsys):
    import json
    import math

    from sas.data.distilled import read_manifest
    from sas.pipeline import run

    from test_pipeline import cfg_for

    small = ["eval=softlabel_fast", "eval.epochs=2", "eval.evaluations=1", "eval.repeats=2", "ddranking=true",
             "ddranking_lr_search=[0.01]", "eval.lr=0.01", "eval.hard={epochs: 2, evaluations: 1}",
             "+sampler@compare.random=random", "compare.random.ipc=2", "compare.random.pool_mult=2"]
    run(cfg_for(tmp_path, *small))
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    sas, rnd = res["samplers"]["sas"]["ddranking"], res["samplers"]["random"]["ddranking"]
    assert sas["full_hard_top1"] == rnd["full_hard_top1"]                            # one full-data run, cached
    assert sas["full_source"].startswith("trained here")
    # two full-data runs, each cached: the teacher's architecture, and the evaluated model's for acc(real, hard)
    assert len(list((tmp_path / "cache" / "real_runs").glob("*.pt"))) == 2
    assert sas["hlr"] == pytest.approx([sas["full_hard_top1"] - h for h in sas["syn_hard_top1"]])
    assert sas["syn_protocol_top1"] == [r["best_top1"] for r in res["samplers"]["sas"]["evaluation"]["repeats"]]
    # IOR: against IPC random real train images per class, a new draw per repeat (the package's baseline)
    assert sas["ior"] == pytest.approx([a - b for a, b in zip(sas["syn_protocol_top1"], sas["random_real_top1"])])
    draws = [read_manifest(d) for d in sas["random_real_distilled"]]
    assert len(draws) == 2 and all(len(d) == 20 and sorted({r["label"] for r in d}) == list(range(10)) for d in draws)
    assert [r["pool_file"] for r in draws[0]] != [r["pool_file"] for r in draws[1]]
    assert all("/pools/" in r["pool_file"] and "real" not in r["pool_file"].split("/pools/")[0] for r in draws[0])
    # IOR pool: the random sampler at the searched (single) rate is exactly the pool's random subset
    assert rnd["ior_pool"] == [0.0, 0.0]
    # DDRS on fractions, LRS as the package computes it: on percentages
    for h, o, d, lr in zip(sas["hlr"], sas["ior"], sas["ddrs"], sas["lrs"]):
        a, b = 0.5 * o - 0.5 * h, 0.5 * 100 * o - 0.5 * 100 * h
        assert d == pytest.approx((math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1)))
        assert lr == pytest.approx((math.exp(b) - math.exp(-1)) / (math.e - math.exp(-1)))
    out = capsys.readouterr().out
    assert all(h in out for h in ("HLR (pp)", "IOR (pp)", "IOR pool (pp)", "DDRS", "LRS (package)"))


def test_ddranking_scores_in_the_packages_units():
    """The issue's example: HLR 0.47, IOR 0.07 give the paper's DDRS 0.192 on fractions and the package's LRS
    -0.157 on percentages."""
    from sas.evaluation.ddranking import ddranking_scores
    s = ddranking_scores(0.9, [0.43], [0.57], [0.50], [0.55])
    assert s["hlr"] == pytest.approx([0.47]) and s["ior"] == pytest.approx([0.07]) and s["ior_pool"] == \
        pytest.approx([0.02])
    assert s["ddrs_mean"] == pytest.approx(0.192, abs=5e-4) and s["lrs_mean"] == pytest.approx(-0.157, abs=5e-4)


def test_ddrankings_hard_label_runs_follow_the_soft_protocol_with_a_learning_rate_search(tmp_path):
    from sas.evaluation.protocol import Protocol, evaluate
    soft = small_protocol(schedule="cosine", decay_on="all", mix="cutmix", lr=0.003)
    hard = soft.ddranking_hard([0.001, 0.1])
    assert (hard.loss, hard.mix, hard.lr_search) == ("hard_ce", "none", (0.001, 0.1))
    assert (hard.schedule, hard.decay_on, hard.epochs, hard.augment) == ("cosine", "all", 10, soft.augment)
    assert soft.ddranking_hard([0.01], mix=True).mix == "cutmix"                 # use_aug_for_hard
    idc = Protocol(cutmix_prob=1.0).ddranking_hard([0.01])
    assert idc.cutmix_prob == 0.0 and idc.lr_search == (0.01,)
    # the search: one run per rate from the same seed, the best kept, every rate recorded
    train, val = load_digits_split("train", 16, per_class=3), load_digits_split("val", 16)
    p = Protocol(epochs=3, evaluations=1, repeats=1, image_size=16, progress=False, accelerator="cpu",
                 augment="none", cutmix_prob=0.0, lr_search=(1e-5, 0.05))
    out = evaluate(train, val, {"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 8}, p, ipc=3)
    rec = out.repeats[0]
    assert [r["lr"] for r in rec["lr_search"]] == [1e-5, 0.05]
    assert rec["best_top1"] == max(r["best_top1"] for r in rec["lr_search"])
    assert rec["lr"] == max(rec["lr_search"], key=lambda r: r["best_top1"])["lr"]
    alone = evaluate(train, val, {"_target_": "sas.models.convnet.ConvNet", "depth": 2, "width": 8},
                     p.replaced(lr=rec["lr"], lr_search=None), ipc=3)
    assert alone.repeats[0]["best_top1"] == rec["best_top1"]                 # the same run as in the search


def test_bad_ddranking_settings_are_named(tmp_path):
    from sas.config import ConfigError, build_plan

    from test_pipeline import cfg_for
    for override, key in (("ddranking_weight=1.5", "ddranking_weight"), ("ddranking_weight=nan", "ddranking_weight"),
                          ("ddranking_lr_search=[0.1,-1]", "ddranking_lr_search"),
                          ("ddranking_full=cache", "ddranking_full")):
        with pytest.raises(ConfigError, match=key):
            build_plan(cfg_for(tmp_path, "ddranking=true", override))
    with pytest.raises(ConfigError, match=r"caches no full-data accuracy for dataset digits .*ddranking_full=train"):
        build_plan(cfg_for(tmp_path, "ddranking=true", "ddranking_full=cached"))
