"""Every PIL mode decodes to the right 8-bit RGB in the one image loader (real data, distilled sets, encoders)."""

import numpy as np
import pytest
from PIL import Image

from sas.data.images import DataError, load_image, open_rgb


def save(tmp_path, img, name="x.png", **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


def rgb(path, **kw):
    return np.asarray(open_rgb(path, **kw)).astype(int)


def test_16_bit_grey_is_scaled_not_saturated(tmp_path):
    a = np.full((4, 4), 135 * 257, dtype=np.uint16)
    a[0, 0], a[0, 1] = 0, 65535
    p = save(tmp_path, Image.fromarray(a))
    assert Image.open(p).mode in ("I;16", "I")
    out = rgb(p)
    assert out[1, 1].tolist() == [135, 135, 135] and out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [255] * 3
    assert abs(load_image(p, 4).float().mean().item() - (135 * 14 + 255) / 16) < 1e-4   # the tensor path too


def test_palette_with_and_without_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.putdata([0, 1])
    assert rgb(save(tmp_path, img, "p.png")).tolist() == [[[10, 20, 30], [200, 100, 50]]]
    p = save(tmp_path, img, "pt.png", transparency=0)
    assert rgb(p, alpha="white").tolist() == [[[255, 255, 255], [200, 100, 50]]]
    assert rgb(p, alpha="drop").tolist() == [[[10, 20, 30], [200, 100, 50]]]


@pytest.mark.parametrize("mode,pixel,rgb_value", [("LA", (100, 128), (100, 100, 100)),
                                                   ("RGBA", (200, 40, 0, 128), (200, 40, 0))])
def test_alpha_is_dropped_or_composited(tmp_path, mode, pixel, rgb_value):
    p = save(tmp_path, Image.new(mode, (2, 2), pixel))
    a = pixel[-1] / 255
    assert rgb(p)[0, 0].tolist() == list(rgb_value)                            # default: dropped (as IDC's loader)
    white = [round(v * a + 255 * (1 - a)) for v in rgb_value]
    black = [round(v * a) for v in rgb_value]
    assert np.abs(rgb(p, alpha="white")[0, 0] - white).max() <= 1
    assert np.abs(rgb(p, alpha="black")[0, 0] - black).max() <= 1


def test_cmyk_bilevel_and_grey(tmp_path):
    p = save(tmp_path, Image.new("CMYK", (1, 1), (255, 0, 0, 0)), "c.jpg", quality=100)
    assert np.abs(rgb(p)[0, 0] - [0, 255, 255]).max() <= 3                     # cyan
    assert rgb(save(tmp_path, Image.new("1", (1, 1), 1), "b.png"))[0, 0].tolist() == [255, 255, 255]
    assert rgb(save(tmp_path, Image.new("L", (1, 1), 77), "l.png"))[0, 0].tolist() == [77, 77, 77]


def test_unsupported_modes_are_refused_naming_the_file(tmp_path):
    p = save(tmp_path, Image.fromarray(np.full((2, 2), 0.5, dtype=np.float32)), "f.tif")
    with pytest.raises(DataError, match=r"f\.tif.*pixel mode 'F'"):
        load_image(p, 2)
    with pytest.raises(ValueError, match="alpha must be one of"):
        open_rgb(save(tmp_path, Image.new("RGB", (1, 1)), "ok.png"), alpha="grey")
