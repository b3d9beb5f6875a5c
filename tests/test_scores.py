import math

import numpy as np
import pytest
import torch

from conftest import clustered, on_circle, rad
from sas import scores

CLAMP_ZERO = math.acos(1 - 1e-6)  # the distance of a row to itself, after the clamp


def test_angular_distance_hand_values():
    a = on_circle(0, 90)
    d = scores.angular_distance(a, on_circle(0, 90, 180, 30))
    assert d.shape == (2, 4)
    expected = [[CLAMP_ZERO, rad(90), math.pi - CLAMP_ZERO, rad(30)],
                [rad(90), CLAMP_ZERO, rad(90), rad(60)]]
    torch.testing.assert_close(d, torch.tensor(expected, dtype=torch.float64))


def test_angular_distance_normalises_rows_and_keeps_float64():
    a, b = on_circle(10, 50), on_circle(80)
    scaled = scores.angular_distance(a * torch.tensor([[3.0], [0.01]], dtype=torch.float64), 7 * b)
    assert scaled.dtype == torch.float64
    torch.testing.assert_close(scaled, scores.angular_distance(a, b))
    torch.testing.assert_close(scaled[:, 0], torch.tensor([rad(70), rad(30)], dtype=torch.float64))


def test_relevance_separation_margin_hand_values():
    # prototypes at 0 and 180 degrees: an image at theta has relevance -theta, separation 180 - theta
    text = on_circle(0, 180)
    feats = on_circle(10, 40, 170, 120)
    labels = torch.tensor([0, 0, 1, 1])
    rel = scores.relevance(feats, labels, text)
    sep = scores.separation(feats, labels, text)
    torch.testing.assert_close(rel, torch.tensor([-rad(10), -rad(40), -rad(10), -rad(60)], dtype=torch.float64))
    torch.testing.assert_close(sep, torch.tensor([rad(170), rad(140), rad(170), rad(120)], dtype=torch.float64))
    torch.testing.assert_close(scores.margin(feats, labels, text), rel + sep)


def test_separation_is_the_nearest_other_prototype():
    text = on_circle(0, 90, 200)
    feats = on_circle(60, 60, 60)  # one image per class, all at 60 degrees
    sep = scores.separation(feats, torch.tensor([0, 1, 2]), text)
    # class 0: others at 90 (30 away) and 200 (140); class 1: 0 (60), 200 (140); class 2: 0 (60), 90 (30)
    torch.testing.assert_close(sep, torch.tensor([rad(30), rad(60), rad(30)], dtype=torch.float64))


def test_static_diversity_hand_values():
    feats = on_circle(0, 2, 30, 100)
    d = scores.static_diversity(feats, torch.tensor([0, 0, 0, 1]))
    # class 0: (2 + 30) / 2, (2 + 28) / 2, (30 + 28) / 2; a class of one scores 0
    torch.testing.assert_close(d, torch.tensor([rad(16), rad(15), rad(29), 0.0], dtype=torch.float64))


def test_compute_scores_bundle_and_dtypes():
    feats, labels, text = clustered(0)
    s64 = scores.compute_scores(feats, labels, text)
    assert all(x.dtype == torch.float64 and x.shape == (len(labels),) for x in s64.as_dict().values())
    s32 = scores.compute_scores(feats.float(), labels, text.float())
    assert s32.margin.dtype == torch.float32
    s16 = scores.compute_scores(feats.half(), labels, text.half())
    assert s16.margin.dtype == torch.float32  # half precision is computed in float32
    torch.testing.assert_close(s32.margin.double(), s64.margin, atol=1e-5, rtol=0)
    torch.testing.assert_close(s64.margin, s64.relevance + s64.separation)


def test_numpy_input_matches_torch():
    feats, labels, text = clustered(1)
    a = scores.compute_scores(feats.numpy(), labels.numpy(), text.numpy())
    b = scores.compute_scores(feats, labels, text)
    torch.testing.assert_close(a.margin, b.margin)
    torch.testing.assert_close(a.static_diversity, b.static_diversity)


def test_chunking_changes_nothing(monkeypatch):
    feats, labels, text = clustered(2, classes=5, per_class=9)
    full = scores.compute_scores(feats, labels, text)
    monkeypatch.setattr(scores, "ROW_CHUNK", 7)
    monkeypatch.setattr(scores, "BLOCK_ELEMENTS", 50)  # one class per block
    chunked = scores.compute_scores(feats, labels, text)
    for name, value in full.as_dict().items():
        torch.testing.assert_close(chunked.as_dict()[name], value, msg=name)


def test_pairwise_angular_zero_diagonal_and_values():
    v = on_circle(0, 30, 100)[None]  # (1, 3, 2)
    d = scores.pairwise_angular(v.float())
    assert torch.equal(torch.diagonal(d, dim1=1, dim2=2), torch.zeros(1, 3))
    want = torch.tensor([[0, rad(30), rad(100)], [rad(30), 0, rad(70)], [rad(100), rad(70), 0]])
    torch.testing.assert_close(d[0], want, atol=1e-5, rtol=0)


def test_matches_reference():
    import reference as R
    feats, labels, text = clustered(4)
    rel, sep, m, div = R.scores(feats.numpy(), labels.numpy(), text.numpy())
    s = scores.compute_scores(feats, labels, text)
    for got, want in [(s.relevance, rel), (s.separation, sep), (s.margin, m), (s.static_diversity, div)]:
        np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_runs_on_device(device):
    feats, labels, text = clustered(5)
    s = scores.compute_scores(feats.to(device), labels.to(device), text.to(device))
    assert s.margin.device.type == device
    ref = scores.compute_scores(feats, labels, text)
    torch.testing.assert_close(s.margin.cpu(), ref.margin)


@pytest.mark.parametrize("fn", [scores.relevance, scores.separation, scores.margin])
def test_score_functions_validate(fn):
    with pytest.raises(ValueError, match="row 1"):
        fn(torch.tensor([[1.0, 0], [0, 0]]), torch.tensor([0, 1]), torch.eye(2))
