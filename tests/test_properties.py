"""Property tests: output size and balance, scale invariance, permutation equivariance,
and the k = ipc reduction of SAS to top-ipc by margin."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as R
from conftest import clustered
from sas.sampling import (ablation_select, herding_select, kcenter_select, mixed_select, random_select,
                          sas_select)

pools = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "classes": st.integers(2, 5),
    "per_class": st.integers(3, 16),
    # d >= 3: on a circle (d = 2) with two classes every image outside the arc between the prototypes
    # has the same margin, so the ranking is decided by rounding alone.
    "dim": st.integers(3, 12),
    "spread": st.floats(0.1, 3.0),
})


def make(p):
    feats, labels, text = clustered(p["seed"], p["classes"], p["per_class"], p["dim"], spread=p["spread"])
    ipc = 1 + p["seed"] % p["per_class"]
    return feats, labels, text, ipc


def run_all(feats, labels, text, ipc, seed=0):
    return {
        "sas": sas_select(feats, labels, text, ipc),
        "sas_r": sas_select(feats, labels, text, ipc, candidate_ratio=0.8),
        "mixed": mixed_select(feats, labels, text, ipc, 0.1),
        "kcenter": kcenter_select(feats, labels, ipc, features="normalised", start="mean"),   # scale-free
        "herding": herding_select(feats, labels, ipc),
        "random": random_select(labels, ipc, seed),
        "abl_div": ablation_select(feats, labels, text, ipc, False, False, True, seed=seed),
        "abl_sep": ablation_select(feats, labels, text, ipc, False, True, False),
    }


@settings(max_examples=40, deadline=None)
@given(pools)
def test_size_balance_and_order(p):
    feats, labels, text, ipc = make(p)
    for name, idx in run_all(feats, labels, text, ipc).items():
        assert idx.dtype == torch.int64 and idx.dim() == 1, name
        assert idx.numel() == p["classes"] * ipc, name
        assert torch.bincount(labels[idx], minlength=p["classes"]).tolist() == [ipc] * p["classes"], name
        assert bool((idx[1:] > idx[:-1]).all()), name  # strictly ascending: sorted, no repeats


@settings(max_examples=30, deadline=None)
@given(pools, st.integers(0, 2 ** 31))
def test_scale_invariance(p, scale_seed):
    feats, labels, text, ipc = make(p)
    g = torch.Generator().manual_seed(scale_seed)
    powers = lambda n: 2.0 ** torch.randint(-20, 20, (n, 1), generator=g).double()  # noqa: E731 exact rescaling
    a = run_all(feats, labels, text, ipc)
    b = run_all(feats * powers(len(feats)), labels, text * powers(len(text)), ipc)
    for name in a:
        assert torch.equal(a[name], b[name]), name


@settings(max_examples=30, deadline=None)
@given(pools, st.integers(0, 2 ** 31))
def test_permutation_equivariance(p, perm_seed):
    feats, labels, text, ipc = make(p)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(perm_seed))
    a = run_all(feats, labels, text, ipc)
    b = run_all(feats[perm], labels[perm], text, ipc)
    for name in ("sas", "sas_r", "mixed", "kcenter", "herding", "abl_sep"):  # random orders are index-based
        assert sorted(perm[b[name]].tolist()) == a[name].tolist(), name


@settings(max_examples=30, deadline=None)
@given(pools)
def test_small_ratio_reduces_sas_to_top_margin(p):
    feats, labels, text, ipc = make(p)
    ratio = ipc / p["per_class"] / 2  # ceil(ratio * n) <= ipc, so k = ipc
    margin = R.scores(feats.numpy(), labels.numpy(), text.numpy())[2]
    assert sas_select(feats, labels, text, ipc, ratio).tolist() == R.top(labels.numpy(), margin, ipc)


@settings(max_examples=25, deadline=None)
@given(pools)
def test_sas_matches_literal_reference(p):
    feats, labels, text, ipc = make(p)
    assert sas_select(feats, labels, text, ipc).tolist() == R.sas(feats.numpy(), labels.numpy(), text.numpy(), ipc)
