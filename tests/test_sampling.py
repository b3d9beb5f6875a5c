"""Hand-computed cases for every selection rule, both tie rules, and agreement
with the literal reference implementation (tests/reference.py)."""

import pytest
import torch

import reference as R
from conftest import clustered, on_circle
from sas import sampling
from sas.sampling import (SAS, Ablation, Herding, KCenter, MixedScore, Random, ablation_select,
                          candidate_counts, diversity_walk, herding_select, kcenter_select,
                          mixed_select, random_select, sas_select)

# Prototypes at 0 and 180 degrees: an image at angle a (|a| <= 180) from its own
# prototype has margin 180 - 2|a| degrees, so margins are easy to read off.
PROTOS = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)


def two_class_pool(class0_angles):
    """Class 0 at the given angles; class 1 its exact mirror image (-v, at 180 + angle)."""
    class0 = on_circle(*class0_angles)
    feats = torch.cat([class0, -class0])
    labels = torch.tensor([0] * len(class0) + [1] * len(class0))
    return feats, labels


# ----------------------------------------------------------------------------- SAS

def test_sas_hand_case_half_pool():
    # margins 160, 156, 152, 100, 60, 20: candidates (ratio 0.5 -> k = 3) are 10, -12, 14.
    # Walk with ipc 2: S = {10, -12}; add 14: sums 10 -> 22 + 4 = 26, -12 -> 48, 14 -> 30: 10 leaves.
    feats, labels = two_class_pool([10, -12, 14, 40, 60, -80])
    idx = sas_select(feats, labels, PROTOS, ipc=2, candidate_ratio=0.5)
    assert idx.tolist() == [1, 2, 7, 8]
    assert idx.dtype == torch.int64


def test_sas_hand_case_whole_pool():
    # Continue the walk over all 6: {-12, 14} + 40 -> 14 leaves; {-12, 40} + 60 -> 40 leaves;
    # {-12, 60} + -80: sums -12 -> 72 + 68 = 140, 60 -> 212, -80 -> 208: -12 leaves.
    feats, labels = two_class_pool([10, -12, 14, 40, 60, -80])
    assert sas_select(feats, labels, PROTOS, ipc=2, candidate_ratio=1.0).tolist() == [4, 5, 10, 11]


def test_sas_candidate_order_ties_go_to_the_lower_index():
    # +10 and -10 have exactly equal margins; with k = ipc = 1 the lower pool index wins.
    for angles, expected in [([10, -10, 50], 0), ([-10, 10, 50], 0), ([50, 10, -10], 1)]:
        feats, labels = two_class_pool(angles)
        idx = sas_select(feats, labels, PROTOS, ipc=1, candidate_ratio=0.3)
        assert idx.tolist() == [expected, 3 + expected]


def test_sas_walk_tie_removes_the_latest_to_enter():
    # Pool (class 0): idx0 at 200, idx1 at 30, idx2 at 10. Margin order: idx2 (160), idx1 (120), idx0 (-140).
    # Walk ipc 2: S = {idx2, idx1}; add idx0: sums idx2 -> 20 + 170 = 190, idx1 -> 20 + 170 = 190 (tied),
    # idx0 -> 340. Of the tied, idx1 entered last and leaves (a "higher index leaves" rule would drop idx2).
    feats, labels = two_class_pool([200, 30, 10])
    for dtype in (torch.float64, torch.float32):
        idx = sas_select(feats.to(dtype), labels, PROTOS.to(dtype), ipc=2, candidate_ratio=1.0)
        assert idx.tolist() == [0, 2, 3, 5], dtype


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_sas_ipc1_keeps_the_top_margin_image(dtype):
    # With IPC 1 every removal is a tie (both members' mean is the same distance): the newcomer leaves.
    feats, labels, text = clustered(7, classes=5, per_class=10, dtype=torch.float64)
    margin = R.scores(feats.numpy(), labels.numpy(), text.numpy())[2]
    want = R.top(labels.numpy(), margin, 1)
    for ratio in (0.1, 0.5, 1.0):
        got = sas_select(feats.to(dtype), labels, text.to(dtype), ipc=1, candidate_ratio=ratio)
        assert got.tolist() == want


def test_diversity_walk_tolerance():
    # Three members, ipc 2, hand-made distances: a tie within tol drops the latest, beyond tol the lowest.
    def dist(gap):
        d = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0 + gap], [2.0, 2.0 + gap, 0.0]], dtype=torch.float64)
        return d[None]
    # sums: member0 = 3, member1 = 3 + gap, member2 = 4 + gap; means = sums / 2
    assert diversity_walk(dist(1e-9), 2, 1e-9).tolist() == [[True, False, True]]   # mean gap 5e-10: tied
    assert diversity_walk(dist(4e-9), 2, 1e-9).tolist() == [[False, True, True]]   # mean gap 2e-9: 0 lowest
    assert diversity_walk(dist(4e-9), 2, 1e-8).tolist() == [[True, False, True]]


def test_candidate_counts():
    counts = torch.tensor([30, 7, 40, 3])
    # ceil(0.1 * 30) = 3 (not 4 from 3.0000000000000004); max with ipc; min with the pool
    assert candidate_counts(counts, 3, 0.1).tolist() == [3, 3, 4, 3]
    assert candidate_counts(counts, 2, 0.5).tolist() == [15, 4, 20, 2]
    assert candidate_counts(counts, 3, 1.0).tolist() == [30, 7, 40, 3]


def test_sas_with_k_equal_ipc_is_top_ipc_by_margin():
    feats, labels, text = clustered(8, classes=3, per_class=20)
    margin = R.scores(feats.numpy(), labels.numpy(), text.numpy())[2]
    assert sas_select(feats, labels, text, ipc=4, candidate_ratio=0.05).tolist() == R.top(labels.numpy(), margin, 4)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ratio", [0.3, 0.5, 1.0])
def test_sas_matches_reference(seed, ratio):
    feats, labels, text = clustered(seed, classes=3, per_class=11 + seed)
    ipc = 1 + seed % 4
    want = R.sas(feats.numpy(), labels.numpy(), text.numpy(), ipc, ratio)
    assert sas_select(feats, labels, text, ipc, ratio).tolist() == want
    assert sas_select(feats.float(), labels, text.float(), ipc, ratio).tolist() == R.sas(
        feats.float().double().numpy(), labels.numpy(), text.float().double().numpy(), ipc, ratio, tol=1e-5)


def test_sas_unequal_class_sizes_and_small_blocks(monkeypatch):
    g = torch.Generator().manual_seed(3)
    sizes = [5, 9, 9, 14, 5]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    text = torch.randn(5, 6, generator=g, dtype=torch.float64)
    feats = text[labels] + torch.randn(len(labels), 6, generator=g, dtype=torch.float64)
    want = R.sas(feats.numpy(), labels.numpy(), text.numpy(), 3, 0.5)
    assert sas_select(feats, labels, text, 3).tolist() == want
    monkeypatch.setattr("sas.scores.BLOCK_ELEMENTS", 1)  # one class per block
    assert sas_select(feats, labels, text, 3).tolist() == want


# ----------------------------------------------------------------------------- mixed score

def test_mixed_hand_case():
    # class 0 at 0, 2, 30: margins 180, 176, 120 (std 27.39); static diversity 16, 15, 29 (z -0.63, -0.78, 1.41)
    # lam 0.5: 171.4, 165.3, 139.3 -> {0, 2deg}; lam 1: 162.8, 154.5, 158.6 -> {0, 30deg}
    feats, labels = two_class_pool([0, 2, 30])
    assert mixed_select(feats, labels, PROTOS, ipc=2, lam=0.0).tolist() == [0, 1, 3, 4]
    assert mixed_select(feats, labels, PROTOS, ipc=2, lam=0.5).tolist() == [0, 1, 3, 4]
    assert mixed_select(feats, labels, PROTOS, ipc=2, lam=1.0).tolist() == [0, 2, 3, 5]


def test_mixed_all_equal_diversity_scores_zero():
    # Three points, equal pairwise distances (120 degrees apart): z is 0, so any lam ranks by margin.
    feats, labels = two_class_pool([0, 120, 240])
    text = PROTOS
    m = R.scores(feats.numpy(), labels.numpy(), text.numpy())[2]
    for lam in (0.0, 5.0, 100.0):
        assert mixed_select(feats, labels, text, ipc=1, lam=lam).tolist() == R.top(labels.numpy(), m, 1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lam", [0.05, 0.2, 1.0])
def test_mixed_matches_reference(seed, lam):
    feats, labels, text = clustered(seed, classes=3, per_class=10)
    want = R.mixed(feats.numpy(), labels.numpy(), text.numpy(), 3, lam)
    assert mixed_select(feats, labels, text, 3, lam).tolist() == want


# ----------------------------------------------------------------------------- k-center, herding

def test_kcenter_hand_case():
    # class at 0, 10, 20, 90, -90: the mean points near 10 (first centre, idx1); farthest from it is -90
    # (100 away); then 90 (80 from 10, 180 from -90) beats 0 and 20 (10 away).
    feats = on_circle(0, 10, 20, 90, -90)
    assert kcenter_select(feats, torch.zeros(5, dtype=torch.long), ipc=3, start="mean").tolist() == [1, 3, 4]


def test_kcenter_ties_go_to_the_lower_index():
    # idx0 and idx1 are exact mirror images (+-20 deg), idx2 and idx3 duplicates at 0: the class mean lies
    # on the x axis, nearest the duplicates (idx2 wins the tie); the mirrors are equally far (idx0 wins).
    up = on_circle(20)
    feats = torch.cat([up, up * torch.tensor([1.0, -1.0], dtype=torch.float64), on_circle(0, 0)])
    labels = torch.zeros(4, dtype=torch.long)
    assert kcenter_select(feats, labels, ipc=1, start="mean").tolist() == [2]
    assert kcenter_select(feats, labels, ipc=2, start="mean").tolist() == [0, 2]
    assert kcenter_select(feats, labels, ipc=3, start="mean").tolist() == [0, 1, 2]


def test_kcenter_raw_features_keep_their_lengths_and_the_random_start_is_seeded():
    # on the x axis at 1, 2 and 10 (one class): normalised rows all sit at (1, 0), raw ones do not
    feats = torch.tensor([[1.0, 0.0], [2.0, 0.0], [10.0, 0.0]], dtype=torch.float64)
    labels = torch.zeros(3, dtype=torch.long)
    assert kcenter_select(feats, labels, 2, features="raw", start="mean").tolist() == [1, 2]   # mean 4.3: 2, then 10
    assert kcenter_select(feats, labels, 2, features="normalised", start="mean").tolist() == [0, 1]   # all tied
    firsts = {kcenter_select(feats, labels, 1, seed=s).item() for s in range(20)}      # raw, random: the defaults
    assert firsts == {0, 1, 2}                                                         # each member can start
    assert kcenter_select(feats, labels, 1, seed=3).item() == kcenter_select(feats, labels, 1, seed=3).item()
    with pytest.raises(ValueError, match="kcenter features must be raw or normalised"):
        kcenter_select(feats, labels, 1, features="unit")


def test_herding_hand_case():
    # points at 0, 90, 180, 270, 30: mean (0.173, 0.1). First the point nearest the mean: 30 (0.64
    # squared distance, against 0.69 for 0); then 180, whose pair mean lands 0.08 from it (0 gives 0.60).
    feats = on_circle(0, 90, 180, 270, 30)
    labels = torch.zeros(5, dtype=torch.long)
    assert herding_select(feats, labels, ipc=1).tolist() == [4]
    assert herding_select(feats, labels, ipc=2).tolist() == [2, 4]


def test_herding_ties_go_to_the_lower_index():
    feats = on_circle(10, 10, -10, -10)  # mean at 0: all four equally close
    assert herding_select(feats, torch.zeros(4, dtype=torch.long), ipc=1).tolist() == [0]


@pytest.mark.parametrize("seed", range(4))
def test_kcenter_and_herding_match_reference(seed):
    feats, labels, _ = clustered(seed, classes=3, per_class=9)
    feats = feats * torch.linspace(0.5, 2.0, len(feats), dtype=feats.dtype)[:, None]    # rows of other lengths
    for features in ("raw", "normalised"):
        for start in ("random", "mean"):
            assert kcenter_select(feats, labels, 4, features=features, start=start, seed=seed).tolist() == \
                R.kcenter(feats.numpy(), labels.numpy(), 4, features, start, seed), (features, start)
    assert herding_select(feats, labels, 4).tolist() == R.herding(feats.numpy(), labels.numpy(), 4)


# ----------------------------------------------------------------------------- random, ablations

def test_random_is_seeded_and_balanced():
    labels = torch.arange(4).repeat(25)
    a, b, c = random_select(labels, 5, seed=0), random_select(labels, 5, seed=0), random_select(labels, 5, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.bincount(labels[a]).tolist() == [5, 5, 5, 5]
    assert torch.equal(random_select(labels.numpy(), 5, seed=0), a)


def test_random_covers_every_image_over_seeds():
    labels = torch.tensor([0] * 6 + [1] * 4)
    seen = torch.zeros(10, dtype=torch.bool)
    for seed in range(60):
        seen[random_select(labels, 2, seed)] = True
    assert bool(seen.all())


@pytest.mark.parametrize("seed", range(3))
def test_ablations_follow_table6(seed):
    feats, labels, text = clustered(seed, classes=3, per_class=12)
    f, y, t = feats.numpy(), labels.numpy(), text.numpy()
    rel, sep, margin, _ = R.scores(f, y, t)
    ab = lambda r, s, d: ablation_select(feats, labels, text, 3, r, s, d, seed=seed).tolist()  # noqa: E731
    assert ab(True, True, True) == sas_select(feats, labels, text, 3).tolist()
    assert ab(True, True, False) == R.top(y, margin, 3)
    assert ab(True, False, False) == R.top(y, rel, 3)
    assert ab(False, True, False) == R.top(y, sep, 3)
    assert ab(True, False, True) == R.sas(f, y, t, 3, score=rel)
    assert ab(False, True, True) == R.sas(f, y, t, 3, score=sep)
    assert ab(False, False, False) == random_select(labels, 3, seed).tolist()
    # diversity alone: the walk over the whole class pool in a seeded random order
    keys = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)).numpy().astype(float)
    assert ab(False, False, True) == R.sas(f, y, t, 3, ratio=1.0, score=keys)
    assert ablation_select(feats, labels, None, 3, False, False, True, seed=seed).tolist() == ab(False, False, True)


# ----------------------------------------------------------------------------- samplers, records, devices

def test_selection_record():
    feats, labels, text = clustered(2, classes=3, per_class=10)
    sel = SAS(ipc=2)(feats, labels, text)
    rec = sel.record()
    assert set(rec) == {"relevance", "separation", "margin", "static_diversity", "candidate", "selected"}
    assert rec["candidate"].sum() == 15 and rec["selected"].sum() == 6
    assert bool((rec["selected"] <= rec["candidate"]).all())  # selected from the candidates
    assert torch.equal(torch.nonzero(rec["selected"]).flatten(), sel.indices)
    m = rec["margin"]
    for c in range(3):  # candidates are each class's top half by margin
        in_c = labels == c
        assert m[in_c & rec["candidate"]].min() >= m[in_c & ~rec["candidate"]].max()
    assert KCenter(ipc=2)(feats, labels, text).record()["candidate"].all()
    assert "margin" not in Herding(ipc=2)(feats, labels).record()


def test_samplers_registry_and_config():
    assert set(sampling.SAMPLERS) == {"sas", "mixed", "kcenter", "herding", "random", "ablation"}
    s = sampling.build_sampler("mixed", ipc=3, lam=0.2)
    assert isinstance(s, MixedScore) and s.config() == {"name": "mixed", "ipc": 3, "pool_mult": 4, "lam": 0.2}
    assert Ablation(use_div=False).uses_prototypes and not Ablation(use_rel=False, use_sep=False).uses_prototypes
    assert isinstance(Random(), sampling.Sampler)


def test_dtype_is_kept():
    feats, labels, text = clustered(1)
    assert SAS(ipc=2)(feats, labels, text).scores.margin.dtype == torch.float64
    assert SAS(ipc=2)(feats.half(), labels, text.half()).scores.margin.dtype == torch.float32


@pytest.mark.parametrize("name", ["sas", "mixed", "kcenter", "herding", "random", "ablation"])
def test_every_sampler_on_device(name, device):
    feats, labels, text = clustered(4, classes=4, per_class=10)
    sampler = sampling.build_sampler(name, ipc=3)
    got = sampler(feats.to(device), labels.to(device), text.to(device))
    assert got.indices.device.type == device
    assert got.indices.tolist() == sampler(feats, labels, text).indices.tolist()
    assert torch.bincount(labels[got.indices.cpu()]).tolist() == [3] * 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kcenter_and_herding_exact_ties_by_construction_go_to_the_lower_index(dtype):
    """Two images per class: both are exactly as far from the class mean, so IPC 1 is a tie that
    rounding of the expanded squared distances must not decide (issue: pool_mult 2, IPC 1)."""
    g = torch.Generator().manual_seed(0)
    C = 300
    feats = torch.nn.functional.normalize(torch.randn(2 * C, 16, generator=g, dtype=torch.float64), dim=1).to(dtype)
    labels = torch.arange(C).repeat_interleave(2)
    first = torch.arange(C) * 2                                     # the lower pool index of each pair
    assert kcenter_select(feats, labels, ipc=1, start="mean").tolist() == first.tolist()
    assert herding_select(feats, labels, ipc=1).tolist() == first.tolist()
    # a mirrored triple: the two outer points are equidistant from the centre one picked first
    trip = torch.tensor([[1.0, 0.3, 0.0], [1.0, 0.0, 0.0], [1.0, -0.3, 0.0]], dtype=dtype)
    assert kcenter_select(trip, torch.zeros(3, dtype=torch.long), ipc=2, start="mean").tolist() == [0, 1]
