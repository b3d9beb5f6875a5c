"""The IDC protocol: bookkeeping, schedule, resume, and a real run on digits that learns."""

import math

import pytest
import torch

from sas.data.images import ImageSet
from sas.data.real import load_digits_split
from sas.evaluation.classifier import Classifier
from sas.artifacts import Evaluation
from sas.evaluation.protocol import Protocol, evaluate
from sas.models import build_model

TINY = {"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 32}


@pytest.fixture(scope="module")
def digits():
    train, val = load_digits_split("train", 32), load_digits_split("val", 32)
    idx = torch.cat([torch.nonzero(train.labels == c).flatten()[:10] for c in range(10)])  # IPC 10
    return ImageSet(train.images[idx], train.labels[idx], train.classes, "digits IPC 10"), val


def test_summarize_mean_and_population_std():
    s = Evaluation([{"best_top1": 0.5, "last_top1": 0.4}, {"best_top1": 0.7, "last_top1": 0.4},
                    {"best_top1": 0.6, "last_top1": 0.1}], {}, {}, 1, 1, 0, "", 0, "").summary()
    assert s["n_repeats"] == 3
    assert math.isclose(s["best_top1_mean"], 0.6) and math.isclose(s["best_top1_std"], math.sqrt(0.02 / 3))
    assert math.isclose(s["last_top1_mean"], 0.3) and math.isclose(s["last_top1_std"], math.sqrt(0.06 / 3))


def test_epochs_by_ipc_and_eval_interval():
    p = Protocol()
    # IDC argument.py ipc_epoch: <=1 3000, <=10 2000, <=50 1500, <=200 1000, <=500 500, else 300
    assert [p.epochs_for(i) for i in (1, 2, 10, 11, 50, 51, 100, 200, 201, 500, 501)] == \
        [3000, 2000, 2000, 1500, 1500, 1000, 1000, 1000, 500, 500, 300]
    # x2/3 for exactly 100 classes, rounded down to a multiple of 100
    assert [p.epochs_for(i, 100) for i in (1, 10, 50, 200, 500, 1000)] == [2000, 1300, 1000, 600, 300, 200]
    assert p.epochs_for(10, 10) == 2000 and p.epochs_for(10, 1000) == 2000
    assert p.eval_every(2000) == 20 and p.eval_every(1500) == 15
    assert Protocol(epochs=7).epochs_for(50) == 7
    assert Protocol(epochs_by_ipc={"1": 3000, "10": 2000}).epochs_for(10) == 2000  # string keys from YAML
    with pytest.raises(ValueError, match="IPC is needed"):
        p.epochs_for(None)


@pytest.mark.parametrize("key,value", [("lr", 0), ("batch_size", -1), ("repeats", 0), ("epochs", 0),
                                       ("cutmix_prob", 1.5)])
def test_bad_protocol_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"eval.{key}"):
        Protocol(**{key: value})


def test_lr_schedule_and_optimizer():
    module = Classifier(build_model("convnet", 10, depth=2, width=8, image_size=16), epochs=2000)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert opt.defaults["lr"] == 0.01 and opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 5e-4
    assert dict(sched.milestones) == {1333: 1, 1666: 1} and sched.gamma == 0.2
    assert conf["lr_scheduler"]["interval"] == "epoch"


def test_best_and_last_bookkeeping():
    module = Classifier(build_model("convnet", 10, depth=2, width=8, image_size=16), epochs=30)
    module.curve = [(10, 0.5), (20, 0.7), (30, 0.6)]
    assert module.best_top1 == 0.7 and module.best_epoch == 20 and module.last_top1 == 0.6


def test_protocol_run_on_digits_learns(digits):
    train, val = digits
    protocol = Protocol(epochs=24, evaluations=3, image_size=32, repeats=2, progress=False)
    seen = []
    result = evaluate(train, val, TINY, protocol, on_repeat=seen.append)
    assert [r["repeat"] for r in seen] == [0, 1] and [r["seed"] for r in seen] == [0, 1]
    for r in result.repeats:
        assert [e for e, _ in r["curve"]] == [8, 16, 24]
        assert r["best_top1"] == max(a for _, a in r["curve"]) and r["last_top1"] == r["curve"][-1][1]
    assert result.summary()["best_top1_mean"] > 0.5  # 100 real digits: far above chance (0.1) on the 540 test digits
    assert result.val_images == 540 and result.epochs == 24 and result.eval_every == 8
    assert result.repeats[0]["curve"] != result.repeats[1]["curve"]  # different seeds


def test_finished_repeats_are_not_run_again(digits):
    train, val = digits
    protocol = Protocol(epochs=2, evaluations=1, image_size=32, repeats=2, progress=False)
    fake = {"repeat": 0, "seed": 0, "best_top1": 0.9, "last_top1": 0.8, "best_epoch": 2, "curve": [[2, 0.9]]}
    ran = []
    result = evaluate(train, val, TINY, protocol, completed=[fake], on_repeat=ran.append)
    assert [r["repeat"] for r in ran] == [1]
    assert result.repeats[0] is fake
    assert math.isclose(result.summary()["best_top1_mean"], (0.9 + ran[0]["best_top1"]) / 2)


def test_same_seed_same_run(digits):
    train, val = digits
    protocol = Protocol(epochs=3, evaluations=3, image_size=32, repeats=1, progress=False)
    a = evaluate(train, val, TINY, protocol).repeats[0]["curve"]
    b = evaluate(train, val, TINY, protocol).repeats[0]["curve"]
    assert a == b


def test_last_epoch_is_always_evaluated(digits):
    train, val = digits
    protocol = Protocol(epochs=5, evaluations=2, image_size=32, repeats=1, progress=False)  # every 2 epochs
    curve = evaluate(train, val, TINY, protocol).repeats[0]["curve"]
    assert [e for e, _ in curve] == [2, 4, 5]
