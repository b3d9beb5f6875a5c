import numpy as np
import pytest
import torch

from sas.data.augment import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, cutmix, normalize


def batch(n=6, h=24, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g, dtype=torch.uint8)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_shapes_dtype_and_reproducibility():
    aug = TrainAugment(size=16)
    x = batch()
    a = aug(x, gen(1))
    assert a.shape == (6, 3, 16, 16) and a.dtype == torch.float32
    assert torch.equal(a, aug(x, gen(1)))
    assert not torch.equal(a, aug(x, gen(2)))


def test_crop_boxes_follow_scale_and_ratio():
    aug = TrainAugment(size=16, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3))
    boxes = aug.crop_boxes(2000, 200, 200, gen(0), "cpu")
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert bool((boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all())
    assert bool((boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 200).all())
    area = w * h / 200 ** 2
    assert area.min() > 0.49 and area.max() <= 1.0
    ratio = w / h
    assert ratio.min() > 0.74 and ratio.max() < 1.35
    assert area.std() > 0.1 and boxes[:, 0].std() > 5  # really random


def test_flip_only_mirrors():
    aug = TrainAugment(size=32, scale=(1, 1), ratio=(1, 1), brightness=0, contrast=0, saturation=0, lighting=0)
    img = torch.arange(32, dtype=torch.uint8).repeat(3, 32, 1)[None].expand(64, -1, -1, -1) * 8  # ramp in x
    out = aug(img, gen(0))
    plain = normalize(img.float() / 255)
    mirrored = plain.flip(-1)
    is_plain = torch.isclose(out, plain, atol=1e-4).flatten(1).all(1)
    is_mirror = torch.isclose(out, mirrored, atol=1e-4).flatten(1).all(1)
    assert bool((is_plain | is_mirror).all()) and 10 < int(is_mirror.sum()) < 54


def test_brightness_scales_each_image():
    aug = TrainAugment(size=8, scale=(1, 1), ratio=(1, 1), flip=False, brightness=0.4, contrast=0,
                       saturation=0, lighting=0, mean=(0, 0, 0), std=(1, 1, 1))
    img = torch.full((50, 3, 8, 8), 100, dtype=torch.uint8)
    out = aug(img, gen(0))
    factor = out[:, 0, 0, 0] / (100 / 255)
    assert factor.min() >= 0.6 - 1e-5 and factor.max() <= 1.4 + 1e-5 and factor.std() > 0.1
    assert torch.allclose(out, factor.view(-1, 1, 1, 1) * 100 / 255 * torch.ones_like(out), atol=1e-5)


def test_lighting_adds_a_colour_per_image():
    aug = TrainAugment(size=8, scale=(1, 1), ratio=(1, 1), flip=False, brightness=0, contrast=0,
                       saturation=0, lighting=0.1, mean=(0, 0, 0), std=(1, 1, 1))
    img = torch.full((20, 3, 8, 8), 128, dtype=torch.uint8)
    shift = aug(img, gen(0)) - 128 / 255
    per_image = shift[:, :, :1, :1]
    assert torch.allclose(shift, per_image.expand_as(shift), atol=1e-6)  # one colour per image
    assert per_image.abs().max() > 1e-3


def test_normalize():
    x = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert torch.allclose(normalize(x), torch.zeros_like(x))
    x = x + torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x), torch.ones_like(x))


def test_cutmix_box_and_lambda():
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 3, 20, 20).contiguous()
    y = torch.arange(8)
    mixed, y_a, y_b, lam = cutmix(x, y, beta=1.0, prob=1.0, rng=np.random.default_rng(3))
    assert mixed.shape == x.shape and torch.equal(y_a, y)
    kept = (mixed == x).all(1).float().mean(dim=(1, 2))            # share of each image left in place
    moved = y_b != y_a
    assert torch.allclose(kept[moved], torch.full_like(kept[moved], lam))
    # pasted pixels come from the permuted partner
    assert bool(((mixed[:, 0] == x[:, 0]) | (mixed[:, 0] == y_b.float().view(-1, 1, 1))).all())
    assert sorted(y_b.tolist()) == y.tolist()


def test_cutmix_probability_zero_is_identity():
    x, y = torch.randn(4, 3, 8, 8), torch.arange(4)
    out, y_a, y_b, lam = cutmix(x, y, 1.0, 0.0, np.random.default_rng(0))
    assert out is x and lam == 1.0 and torch.equal(y_b, y)


@pytest.mark.parametrize("seed", range(3))
def test_cutmix_lambda_is_the_kept_area_of_a_beta_box(seed):
    # lam ~ Beta(1, 1) = U(0, 1) sets the box side; clipping at the border keeps more of the image,
    # so the reported lam (the kept area) averages about 0.69 on a 64 x 64 image, and never falls below 0.
    rng = np.random.default_rng(seed)
    lams = [cutmix(torch.zeros(2, 1, 64, 64), torch.arange(2), 1.0, 1.0, rng)[3] for _ in range(1000)]
    assert 0.64 < np.mean(lams) < 0.74 and np.std(lams) > 0.15 and min(lams) >= 0 and max(lams) <= 1


# ---- IDC's ColorJitter (utils.py): lerps, no clamping, a random order per image

GRAY_W = (0.299, 0.587, 0.114)


def _idc_jitter_one(img, factors, order):
    """One image (3, H, W), written from IDC's equations: img.lerp(target, 1 - f) per op, in `order`."""
    for op in order:
        f = float(factors[op])
        gray = sum(w * img[c] for c, w in enumerate(GRAY_W))                # (H, W)
        target = (torch.zeros_like(img) if op == 0 else gray.mean().expand_as(img) if op == 1
                  else gray.expand_as(img))
        img = img + (1 - f) * (target - img)
    return img


def test_color_jitter_matches_idc_per_image_order_without_clamping():
    aug = TrainAugment(size=8, brightness=0.4, contrast=0.4, saturation=0.4)
    x = torch.rand(6, 3, 5, 5, generator=gen(0))
    factors = torch.tensor([[1.4, 0.6, 1.3], [0.7, 1.35, 0.65], [1.2, 1.2, 0.6],
                            [0.9, 0.61, 1.39], [1.39, 1.39, 1.39], [0.6, 1.4, 1.0]])
    orders = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    out = aug.color_jitter(x, draws=(factors, orders))
    ref = torch.stack([_idc_jitter_one(x[i], factors[i], orders[i].tolist()) for i in range(6)])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert out.max() > 1.0 or out.min() < 0.0               # no clamping to [0, 1]


def test_color_jitter_draws_an_order_per_image():
    aug = TrainAugment(size=8)
    factors, order = aug.jitter_draws(600, gen(0), "cpu")
    assert torch.equal(order.sort(1).values, torch.arange(3).expand(600, 3))     # each row a permutation
    assert len({tuple(r) for r in order.tolist()}) == 6                          # all orders, within one batch
    assert factors.min() >= 0.6 and factors.max() <= 1.4 and factors.std() > 0.2


def test_bright_pixels_are_not_clamped():
    aug = TrainAugment(size=8, scale=(1, 1), ratio=(1, 1), flip=False, brightness=0.4, contrast=0,
                       saturation=0, lighting=0, mean=(0, 0, 0), std=(1, 1, 1))
    out = aug(torch.full((200, 3, 8, 8), 250, dtype=torch.uint8), gen(0))
    assert out.max() > 1.2                                   # 250/255 * f with f up to 1.4
