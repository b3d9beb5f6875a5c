"""DSA as IDC trains on CIFAR-10 (augment.py DiffAug, batch=False), checked op by op from its equations."""

import math

import pytest
import torch
import torch.nn.functional as F

from sas.data.dsa import CIFAR_MEAN, CIFAR_STD, DSAugment


def gen(seed):
    return torch.Generator().manual_seed(seed)


def draws(n, **over):
    d = {"flip": torch.zeros(n, dtype=torch.bool), "color": torch.full((n, 3), 0.5),
         "shift": torch.zeros(n, 2, dtype=torch.long), "scale": torch.ones(n, 2), "angle": torch.zeros(n),
         "choice": torch.tensor([0])}
    d.update(over)
    return d


def test_color_ops_follow_the_equations():
    aug = DSAugment("color")
    x = torch.randn(3, 3, 6, 6, generator=gen(0))
    r = torch.tensor([[0.1, 0.9, 0.3], [0.5, 0.5, 0.5], [0.8, 0.2, 1.0]])
    out = aug.apply(x, draws(3, color=r))
    for i in range(3):
        y = x[i] + (r[i, 0] - 0.5) * 1.0                                    # brightness
        m = y.mean(0, keepdim=True)
        y = (y - m) * (r[i, 1] * 2.0) + m                                   # saturation (channel mean per pixel)
        y = (y - y.mean()) * (r[i, 2] + 0.5) + y.mean()                     # contrast (image mean)
        torch.testing.assert_close(out[i], y)


def test_crop_shifts_through_a_one_pixel_zero_border():
    aug = DSAugment("crop")
    x = torch.arange(1, 1 + 2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8).expand(2, 3, 8, 8).contiguous()
    shift = torch.tensor([[2, -1], [-3, 0]])
    out = aug.apply(x, draws(2, shift=shift))
    for b, (tx, ty) in enumerate(shift.tolist()):
        pad = F.pad(x[b], (1, 1, 1, 1))
        for i in range(8):
            for j in range(8):
                ri, cj = min(max(i + tx + 1, 0), 9), min(max(j + ty + 1, 0), 9)
                assert out[b, 0, i, j] == pad[0, ri, cj]
    assert (out[0, :, 6:] == 0).all() and (out[0, :, :, 7] != 0).any()      # shifted-in rows are zero


def test_scale_and_rotate_are_affine_resamples():
    x = torch.randn(2, 3, 8, 8, generator=gen(1))
    s = torch.tensor([[1.1, 0.9], [0.85, 1.2]])
    out = DSAugment("scale").apply(x, draws(2, scale=s))
    theta = torch.tensor([[[1.1, 0, 0], [0, 0.9, 0]], [[0.85, 0, 0], [0, 1.2, 0]]])
    ref = F.grid_sample(x, F.affine_grid(theta, [2, 3, 8, 8], align_corners=False), align_corners=False)
    torch.testing.assert_close(out, ref)
    a = torch.tensor([0.2, -0.1])
    out = DSAugment("rotate").apply(x, draws(2, angle=a))
    theta = torch.stack([torch.tensor([[math.cos(v), -math.sin(v), 0], [math.sin(v), math.cos(v), 0]]) for v in a])
    ref = F.grid_sample(x, F.affine_grid(theta, [2, 3, 8, 8], align_corners=False), align_corners=False)
    torch.testing.assert_close(out, ref)


def test_one_geometric_op_per_batch_and_draw_ranges():
    aug = DSAugment()
    x = torch.randn(4, 3, 8, 8, generator=gen(2))
    d = draws(4, shift=torch.tensor([[1, 1]] * 4), scale=torch.full((4, 2), 1.15), angle=torch.full((4,), 0.2))
    crop, scale, rot = (aug.apply(x, {**d, "choice": torch.tensor([i])}) for i in range(3))
    torch.testing.assert_close(crop, DSAugment("color_flip_crop").apply(x, d))
    torch.testing.assert_close(rot, DSAugment("color_flip_rotate").apply(x, d))
    assert not torch.allclose(scale, crop)
    big = aug.draws(4000, 32, 32, gen(0), "cpu")
    assert big["shift"].min() == -4 and big["shift"].max() == 4               # int(32 * 0.125 + 0.5)
    assert 1 / 1.2 <= big["scale"].min() and big["scale"].max() <= 1.2
    assert big["angle"].abs().max() <= math.radians(15) and big["angle"].abs().max() > math.radians(14)
    assert 0.45 < big["flip"].float().mean() < 0.55
    choices = {int(aug.draws(2, 32, 32, gen(s), "cpu")["choice"]) for s in range(40)}
    assert choices == {0, 1, 2}


def test_forward_normalises_with_cifar_stats_first():
    aug = DSAugment("")
    img = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = aug(img, gen(0))
    expect = (1 - torch.tensor(CIFAR_MEAN)) / torch.tensor(CIFAR_STD)
    torch.testing.assert_close(out[:, :, 0, 0], expect.expand(2, 3))


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="cutout"):
        DSAugment("color_cutout")
