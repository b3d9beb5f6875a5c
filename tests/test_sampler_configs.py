"""conf/sampler/*.yaml compose with Hydra and build working samplers."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from conftest import clustered
from sas import sampling

CONF = Path(__file__).resolve().parents[1] / "conf"
NAMES = sorted(p.stem for p in (CONF / "sampler").glob("*.yaml") if not p.stem.startswith("_"))   # _: base files
TABLE6 = {  # row -> (use_rel, use_sep, use_div)
    "ablation_none": (False, False, False), "ablation_rel": (True, False, False),
    "ablation_sep": (False, True, False), "ablation_div": (False, False, True),
    "ablation_rel_sep": (True, True, False), "ablation_full": (True, True, True),
}


def build(name, *overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=[f"+sampler={name}", *overrides])
    return instantiate(cfg.sampler)


def test_every_paper_sampler_has_a_config():
    assert {"sas", "mixed", "kcenter", "herding", "random", *TABLE6} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_builds_a_sampler_that_selects(name):
    sampler = build(name, "sampler.ipc=3")
    expected_mult = {"none": 1, "kcenter_real": None}.get(name, 4)  # none: the IPC-sized pool; null: all of it
    assert isinstance(sampler, sampling.Sampler) and sampler.ipc == 3 and sampler.pool_mult == expected_mult
    feats, labels, text = clustered(0, classes=4, per_class=12)
    g = torch.Generator().manual_seed(0)
    extras = {"real_centroids": text, "difficulty": torch.rand(len(labels), generator=g, dtype=torch.float64),
              "real_difficulty": torch.rand(40, generator=g, dtype=torch.float64),
              "real_labels": torch.arange(4).repeat_interleave(10)}          # what samplers that need them get
    sel = sampler(feats, labels, text, extras={k: extras[k] for k in sampler.needs})
    assert torch.bincount(labels[sel.indices]).tolist() == [3] * 4


def test_table6_rows():
    for name, flags in TABLE6.items():
        s = build(name)
        assert (s.use_rel, s.use_sep, s.use_div) == flags, name
    feats, labels, text = clustered(1, classes=4, per_class=12)
    assert torch.equal(build("ablation_full")(feats, labels, text).indices,
                       build("sas")(feats, labels, text).indices)


def test_paper_defaults():
    s = build("sas")
    assert (s.ipc, s.pool_mult, s.candidate_ratio) == (10, 4, 0.5)


@pytest.mark.parametrize("override,key", [("sampler.candidate_ratio=1.5", "candidate_ratio"),
                                          ("sampler.pool_mult=0", "pool_mult"), ("sampler.ipc=0", "ipc")])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(InstantiationException, match=key):
        build("sas", override)
