"""Set quality (Fréchet distance, precision / recall / density / coverage) against literal implementations of
each definition (tests/reference.py)."""

import pytest
import torch

import reference as ref
from sas.evaluation.quality import frechet_distance, prdc, set_quality


@pytest.mark.parametrize("seed,m,n,d", [(0, 40, 30, 5), (1, 25, 12, 8), (2, 60, 60, 3), (3, 12, 9, 20), (4, 30, 8, 16)])
def test_frechet_distance_matches_the_matrix_square_root_formula(seed, m, n, d):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(m, d, generator=g, dtype=torch.float64)
    fake = 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g,
                                                                                  dtype=torch.float64) + 0.5
    assert frechet_distance(real, fake) == pytest.approx(ref.frechet(real.numpy(), fake.numpy()), rel=1e-6, abs=1e-8)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(real[:1], fake) is None


@pytest.mark.parametrize("seed,k", [(0, 3), (1, 5), (2, 1)])
def test_prdc_matches_the_definitions(seed, k):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(30, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(20, 4, generator=g, dtype=torch.float64) * 0.8 + 0.3
    got, want = prdc(real, fake, k), ref.prdc(real.numpy(), fake.numpy(), k)
    assert got == pytest.approx(want)


def test_per_class_and_overall_with_small_classes_left_undefined():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(40, 3, generator=g), torch.randn(8, 3, generator=g)
    ry, fy = torch.arange(2).repeat_interleave(20), torch.arange(2).repeat_interleave(4)
    q = set_quality(real, ry, fake, fy, ["a", "b"], k=5)
    assert q["overall"]["n"] == 8 and q["overall"]["recall"] == pytest.approx(ref.prdc(real, fake, 5)["recall"])
    a = q["per_class"]["a"]
    assert a["recall"] is None and a["precision"] == pytest.approx(ref.prdc(real[:20], fake[:4], 5)["precision"])
    assert a["fd"] == pytest.approx(ref.frechet(real[:20].numpy(), fake[:4].numpy()), rel=1e-5)


def test_prdc_in_chunks_gives_the_same_figures(monkeypatch):
    import sas.evaluation.quality as quality
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(50, 3, generator=g), torch.randn(23, 3, generator=g)
    whole = quality.prdc(real, fake, 4)
    monkeypatch.setattr(quality, "CHUNK", 7)                     # several chunks on both sides
    assert quality.prdc(real, fake, 4) == pytest.approx(whole) and whole == pytest.approx(ref.prdc(real, fake, 4))
