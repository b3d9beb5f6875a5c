"""Every bad input raises a ValueError whose message names the value, row or class."""

import numpy as np
import pytest
import torch

from conftest import clustered
from sas.sampling import (SAS, Ablation, MixedScore, Random, SelectionInputError, ablation_select,
                          build_sampler, herding_select, kcenter_select, mixed_select, random_select,
                          sas_select)

FEATS, LABELS, TEXT = clustered(0, classes=3, per_class=6, dim=4)


def with_row(x, row, value):
    x = x.clone()
    x[row] = value
    return x


BAD = [
    ("nan row", lambda: sas_select(with_row(FEATS, 3, float("nan")), LABELS, TEXT, 2), r"image_features.*non-finite.*row 3"),
    ("inf text", lambda: sas_select(FEATS, LABELS, with_row(TEXT, 1, float("inf")), 2), r"prototypes.*non-finite.*row 1"),
    ("zero row", lambda: sas_select(with_row(FEATS, 5, 0.0), LABELS, TEXT, 2), r"image_features row 5 has zero norm"),
    ("zero text", lambda: mixed_select(FEATS, LABELS, with_row(TEXT, 2, 0.0), 2, 0.1), r"prototypes row 2 has zero norm"),
    ("1-D feats", lambda: sas_select(FEATS[:, 0], LABELS, TEXT, 2), r"image_features must be 2-D.*\(18,\)"),
    ("label count", lambda: sas_select(FEATS, LABELS[:-1], TEXT, 2), r"labels has 17 entries but image_features has 18 rows"),
    ("2-D labels", lambda: sas_select(FEATS, LABELS[:, None], TEXT, 2), r"labels must be 1-D.*\(18, 1\)"),
    ("dim mismatch", lambda: sas_select(FEATS, LABELS, TEXT[:, :3], 2), r"prototypes have dimension 3 but image_features have dimension 4"),
    ("float labels", lambda: sas_select(FEATS, LABELS.double(), TEXT, 2), r"labels must be integers.*float64"),
    ("bool labels", lambda: kcenter_select(FEATS, LABELS > 0, 2), r"labels must be integers.*bool"),
    ("label too big", lambda: sas_select(FEATS, with_row(LABELS, 7, 3), TEXT, 2), r"labels\[7\] = 3 is out of range \[0, 3\)"),
    ("negative label", lambda: herding_select(FEATS, with_row(LABELS, 4, -1), 2), r"labels\[4\] = -1 is negative"),
    ("empty class", lambda: sas_select(FEATS, LABELS, torch.cat([TEXT, TEXT[:1]]), 2), r"class 3 has no pool images"),
    ("empty class no text", lambda: kcenter_select(FEATS, LABELS, 2, num_classes=5), r"class 3 has no pool images \(2 empty classes of 5\)"),
    ("gap in labels", lambda: herding_select(FEATS, torch.where(LABELS == 1, 2, LABELS), 2), r"class 1 has no pool images"),
    ("short class", lambda: sas_select(FEATS, torch.where(torch.arange(18) < 4, 1, LABELS), TEXT, 6), r"class 0 has 3 pool images, fewer than ipc=6 \(2 such classes\)"),
    ("ipc 0", lambda: sas_select(FEATS, LABELS, TEXT, 0), r"ipc must be >= 1, got 0"),
    ("ipc float", lambda: random_select(LABELS, 2.5, 0), r"ipc must be an integer, got 2.5"),
    ("ratio 0", lambda: sas_select(FEATS, LABELS, TEXT, 2, candidate_ratio=0.0), r"candidate_ratio must be in \(0, 1\], got 0.0"),
    ("ratio > 1", lambda: ablation_select(FEATS, LABELS, TEXT, 2, True, True, True, candidate_ratio=1.5), r"candidate_ratio.*1.5"),
    ("ratio nan", lambda: sas_select(FEATS, LABELS, TEXT, 2, candidate_ratio=float("nan")), r"candidate_ratio.*nan"),
    ("negative lam", lambda: mixed_select(FEATS, LABELS, TEXT, 2, lam=-0.1), r"lam must be a finite number >= 0, got -0.1"),
    ("one class sas", lambda: sas_select(FEATS[LABELS == 0], LABELS[LABELS == 0], TEXT[:1], 2), r"separation needs at least two classes"),
    ("one class ablation", lambda: ablation_select(FEATS[LABELS == 0], LABELS[LABELS == 0], TEXT[:1], 2, False, True, False), r"at least two classes"),
    ("no text", lambda: SAS(ipc=2)(FEATS, LABELS), r"sampler 'sas' needs prototypes"),
    ("pool_mult", lambda: SAS(ipc=2, pool_mult=0), r"pool_mult must be >= 1, got 0"),
    ("unknown sampler", lambda: build_sampler("topk"), r"unknown sampler 'topk'"),
    ("flag", lambda: Ablation(use_div="yes"), r"use_div must be true or false"),
    ("string lam", lambda: MixedScore(lam="big"), r"lam must be a number, got 'big'"),
    ("bad seed", lambda: Random(ipc=2, seed=1.5)(FEATS, LABELS), r"seed must be an integer"),
    ("empty labels", lambda: random_select(torch.tensor([], dtype=torch.long), 1, 0), r"labels must be a non-empty 1-D"),
]


@pytest.mark.parametrize("case,call,pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_with_useful_message(case, call, pattern):
    with pytest.raises(SelectionInputError, match=pattern):
        call()


def test_errors_are_value_errors():
    assert issubclass(SelectionInputError, ValueError)


def test_relevance_alone_works_with_one_class():
    # relevance needs no other class, so this ablation is valid with a single prototype
    idx = ablation_select(FEATS[LABELS == 0], LABELS[LABELS == 0], TEXT[:1], 2, True, False, False)
    assert idx.numel() == 2


def test_numpy_inputs_and_numpy_integers():
    idx = sas_select(FEATS.numpy(), LABELS.numpy().astype(np.int32), TEXT.numpy(), np.int64(2))
    assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int64
    assert idx.tolist() == sas_select(FEATS, LABELS, TEXT, 2).tolist()


def test_inputs_are_not_modified():
    feats, text = FEATS.clone(), TEXT.clone()
    sas_select(feats, LABELS, text, 2)
    assert torch.equal(feats, FEATS) and torch.equal(text, TEXT)
