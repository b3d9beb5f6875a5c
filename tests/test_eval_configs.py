"""conf/dataset, conf/model and conf/eval compose and build what they say."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import sas.config  # noqa: F401  (the distill config schema)
from sas.data.real import RealData
from sas.evaluation.protocol import Protocol
from sas.models import build_model, count_parameters

CONF = Path(__file__).resolve().parents[1] / "conf"


def cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(overrides=["+paths=default", *overrides])


def test_idc_protocol_values():
    p = instantiate(cfg("+eval=idc").eval)
    assert isinstance(p, Protocol)
    assert (p.lr, p.momentum, p.weight_decay, p.batch_size) == (0.01, 0.9, 5e-4, 64)
    assert [p.epochs_for(i) for i in (1, 10, 50, 100, 500, 1000)] == [3000, 2000, 1500, 1000, 500, 300]
    assert p.epochs_for(10, num_classes=100) == 1300
    assert p.augment == "idc" and p.cutmix_prob == 1.0 and tuple(p.mean) == (0.485, 0.456, 0.406)
    assert p.cutmix_beta == 1.0 and p.cutmix_prob == 1.0 and p.lr_gamma == 0.2
    assert p.image_size == 224 and list(p.crop_scale) == [0.5, 1.0] and p.jitter == 0.4 and p.lighting == 0.1
    assert p.repeats == 3 and p.eval_every(2000) == 20


def test_cifar_protocol_is_idcs_cifar10_path():
    """IDC argument.py / test.py for cifar10: DSA on, CutMix p 0.5, 1000 epochs, 4 evaluations, CIFAR stats."""
    from sas.data.dsa import DSAugment
    p = instantiate(cfg("+eval=idc_cifar").eval)
    assert p.augment == "dsa" and p.cutmix_prob == 0.5 and p.epochs_for(10) == p.epochs_for(50) == 1000
    assert p.eval_every(p.epochs_for(10)) == 250 and p.image_size == 32
    assert tuple(p.mean) == (0.4914, 0.4822, 0.4465) and tuple(p.std) == (0.2023, 0.1994, 0.2010)
    aug = p.train_augment()
    assert isinstance(aug, DSAugment) and aug.flip and aug.color and aug.geometric == ["crop", "scale", "rotate"]


def test_fast_and_gpu_presets():
    fast = instantiate(cfg("+eval=fast").eval)
    assert fast.image_size == 32 and fast.epochs == 40 and fast.lr == 0.01
    gpu = instantiate(cfg("+eval=idc_gpu").eval)
    assert gpu.precision == "bf16-mixed" and gpu.channels_last and gpu.compile


@pytest.mark.parametrize("name,params", [("convnet6", 754_570), ("resnet_ap10", 4_910_922), ("resnet18", 11_181_642)])
def test_model_configs(name, params):
    assert count_parameters(build_model(cfg(f"+model={name}").model, 10, image_size=224)) == params


@pytest.mark.parametrize("name", ["imagewoof", "imagenette", "imageidc", "cifar10", "digits"])
def test_dataset_configs(name, tmp_path):
    data = instantiate(cfg(f"+dataset={name}", "+eval=fast", f"paths.data_dir={tmp_path}").dataset)
    assert isinstance(data, RealData) and data.table.name == name and data.image_size == 32
    if name == "digits":
        assert len(data.load("val")) == 540
    elif name != "cifar10":
        assert data.layout == "imagenet" and data.root == f"{tmp_path}/imagenet"


def test_ddranking_presets_are_the_packages_evaluation():
    import math
    soft = instantiate(cfg("+eval=ddranking_soft").eval)
    assert (soft.lr, soft.weight_decay, soft.decay_on, soft.schedule, soft.epochs) == (1e-3, 0.01, "all", "cosine", 300)
    assert soft.batch_size_for(10, 10) == 256 and soft.augment == "rrc" and tuple(soft.crop_scale) == (0.08, 1.0)
    assert soft.eval_every(300) == 20 and soft.repeats == 5 and soft.repeat_seeds == (0, 1, 42, 1234, 3407)
    assert [soft.repeat_seed(r) for r in range(5)] == [0, 1, 42, 1234, 3407]
    from sas.evaluation.softlabel import schedule_factor
    assert schedule_factor("cosine", 150, 300) == 0.5 and schedule_factor("cosine", 300, 300) == 0.0     # to 0
    assert math.isclose(schedule_factor("rded_cosine", 300, 300), 0.5)                                    # RDED's
    hard = instantiate(cfg("+eval=ddranking_hard").eval)
    assert (hard.loss, hard.mix, hard.lr_search) == ("hard_ce", "none", (0.001, 0.005, 0.01, 0.05, 0.1))
    assert (hard.schedule, hard.epochs, hard.decay_on) == (soft.schedule, soft.epochs, soft.decay_on)


def test_imagenet1k_preset_runs_rdeds_float32():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        c = compose("distill", overrides=["experiment=imagenet1k"])
    assert c.eval.precision == "32-true" and not c.eval.channels_last and c.ddranking_full == "cached"
