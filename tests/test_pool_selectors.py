"""The field's other pool selectors against literal loops written from their equations (tests/reference.py)."""

import numpy as np
import pytest
import torch

import reference as ref
from sas.inputs import SelectionInputError
from sas.pool_selectors import DifficultyGuided, SubgroupSelection, largest_remainder, log_transform
from sas.sampling import _random_keys


def pool(seed, classes=3, per_class=20, dim=6):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    return torch.randn(classes * per_class, dim, generator=g, dtype=torch.float64), labels


@pytest.mark.parametrize("seed,ipc", [(0, 4), (1, 6), (2, 10), (3, 1)])
def test_difficulty_guided_matches_the_literal_procedure(seed, ipc):
    feats, labels = pool(seed)
    rng = np.random.default_rng(seed)
    difficulty = torch.tensor(rng.beta(0.6, 1.5, len(labels)))        # skewed like 1 - p(class)
    real_y = torch.arange(3).repeat_interleave(50)
    real_d = torch.tensor(rng.beta(0.5, 3.0, 150))
    s = DifficultyGuided(ipc=ipc, pool_mult=None, seed=seed)
    got = s(feats, labels, None, extras={"difficulty": difficulty, "real_difficulty": real_d, "real_labels": real_y})
    keys = _random_keys(len(labels), seed, "cpu").tolist()
    want = ref.diffguided(labels.tolist(), difficulty.tolist(), real_d.tolist(), real_y.tolist(), ipc, keys)
    assert got.indices.tolist() == want
    assert torch.bincount(labels[got.indices]).tolist() == [ipc] * 3


def test_difficulty_guided_pieces():
    v = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0], dtype=torch.float64)
    out = log_transform(v, torch.tensor(1), torch.tensor(1), 1e-4)
    assert out.tolist() == pytest.approx(ref.dg_log_transform(v.tolist(), 1, 1))
    assert out[0] == 1e-4 and out[-1] == pytest.approx(1.0)               # raised to bottom, cut to top
    assert largest_remainder(torch.tensor([3.0, 0.0, 1.0, 1.0]), 4).tolist() == [2, 0, 1, 1]
    assert largest_remainder(torch.tensor([1.0, 1.0, 1.0, 0.0]), 2).tolist() == [1, 1, 0, 0]   # ties: lower bin
    assert largest_remainder(torch.zeros(3), 4).tolist() == [0, 0, 0]
    with pytest.raises(SelectionInputError, match="difficulty\\[2\\] = 1.5 is not a number in \\[0, 1\\]"):
        DifficultyGuided(ipc=1, pool_mult=None)(torch.ones(3, 2), torch.tensor([0, 0, 1]), None,
                                                extras={"difficulty": torch.tensor([0.1, 0.2, 1.5]),
                                                        "real_difficulty": torch.zeros(2),
                                                        "real_labels": torch.tensor([0, 1])})
    with pytest.raises(SelectionInputError, match="needs real_difficulty"):
        DifficultyGuided(ipc=1)(torch.ones(2, 2), torch.tensor([0, 1]), None, extras={"difficulty": torch.zeros(2),
                                                                                    "real_labels": torch.zeros(1)})


@pytest.mark.parametrize("seed,ipc,groups,beta", [(0, 3, 4, 1.0), (1, 2, 5, 0.5), (2, 5, 3, 2.0), (3, 1, 6, 1.0)])
def test_s3_matches_the_literal_coordinate_ascent(seed, ipc, groups, beta):
    feats, labels = pool(seed, classes=5, per_class=30)
    real = torch.randn(5, 6, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    got = SubgroupSelection(ipc=ipc, pool_mult=None, groups=groups, beta=beta)(feats, labels, None,
                                                                                extras={"real_centroids": real})
    assert got.indices.tolist() == ref.s3(feats.numpy(), labels.tolist(), real.numpy(), ipc, groups, beta=beta)


def test_s3_takes_whole_subgroups_and_says_when_the_pool_is_short():
    feats, labels = pool(4, classes=3, per_class=12)
    real = torch.randn(3, 6, dtype=torch.float64)
    got = SubgroupSelection(ipc=4, pool_mult=3)(feats, labels, None, extras={"real_centroids": real})
    for c in range(3):                                       # one of the 3 consecutive groups of 4 per class
        chosen = [i - 12 * c for i in got.indices.tolist() if labels[i] == c]
        assert chosen in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11])
    with pytest.raises(SelectionInputError, match="s3 needs 4 subgroups of ipc=4 images per class; class 0 has 12"):
        SubgroupSelection(ipc=4, groups=4)(feats, labels, None, extras={"real_centroids": real})
    with pytest.raises(SelectionInputError, match=r"real_centroids must be \(3, 6\)"):
        SubgroupSelection(ipc=4)(feats, labels, None, extras={"real_centroids": real[:2]})
