"""SigLIP, EVA-02-CLIP and DINOv2 as encoder choices: each builds from its config with the preprocessing its
weights were published with, tiny random-init variants run every path, and cache keys tell them apart."""

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from published import dinov2_snapshot
from test_pipeline import CONF


def encoder(name, **over):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("distill", overrides=[f"encoder={name}", *(f"encoder.{k}={v}" for k, v in over.items())])
    return instantiate(cfg.encoder, _convert_="all")


def photo(path, w=48, h=32):
    """A non-square image whose left and right thirds differ: a crop and a squash see different pixels."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 3] = (250, 20, 20)
    a[:, w // 3: 2 * w // 3] = (20, 250, 20)
    a[:, 2 * w // 3:] = (20, 20, 250)
    Image.fromarray(a).save(path)
    return str(path)


def test_published_siglip_and_eva_configs_carry_their_own_preprocessing():
    siglip, eva = encoder("siglip_b16"), encoder("eva02_b16")       # nothing loads: the tags are open_clip's
    assert (siglip.model, siglip.pretrained, siglip.activation()) == ("ViT-B-16-SigLIP", "webli", "gelu")
    tag = siglip._tag()
    assert tag["hf_hub"].startswith("timm/ViT-B-16-SigLIP") and tag["mean"] == (0.5, 0.5, 0.5)
    assert tag["resize_mode"] == "squash" and tag["interpolation"] == "bicubic"
    assert eva._tag()["hf_hub"].startswith("timm/eva02_base_patch16_clip_224") and eva.activation() == "gelu"


def test_tensor_preprocessing_follows_the_models_resize_mode(tmp_path, monkeypatch):
    import open_clip
    f = photo(tmp_path / "wide.png")
    enc = encoder("siglip_tiny")
    monkeypatch.setattr(type(enc), "_tag", lambda self: open_clip.get_pretrained_cfg("ViT-B-16-SigLIP", "webli"))
    monkeypatch.setattr(type(enc), "_weights_file", lambda self: None)    # SigLIP's preprocessing, random weights
    _, pil, _, _ = enc._load()
    want = pil(Image.open(f).convert("RGB"))                              # open_clip's own transform: squash
    got = enc._tensor_preprocess(torch.from_numpy(np.asarray(Image.open(f))).permute(2, 0, 1)[None])[0]
    assert got.shape == want.shape == (3, 224, 224) and (got - want).abs().max() < 0.15
    assert got[0, :, :20].mean() > 0.5 and got[2, :, -20:].mean() > 0.5   # all three thirds kept (not cropped)
    enc._load()[0].visual.preprocess_cfg["resize_mode"] = "shortest"      # CLIP's: shorter side, centre crop
    cropped = enc._tensor_preprocess(torch.from_numpy(np.asarray(Image.open(f))).permute(2, 0, 1)[None])[0]
    assert got[0, :, 60:70].mean() > 0.5 and cropped[0, :, 60:70].mean() < 0   # the red third: cut into by the crop


@pytest.mark.parametrize("name,dim", [("siglip_tiny", 192), ("eva_tiny", 32), ("dinov2_tiny", 32)])
def test_tiny_variants_encode_and_keys_tell_them_apart(tmp_path, name, dim):
    files = [photo(tmp_path / f"{i}.png", 40 + 8 * i, 32) for i in range(3)]
    enc = encoder(name)
    feats = enc.encode_files(files)
    assert feats.shape == (3, dim) and torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-5)
    if name != "dinov2_tiny":
        assert enc.text_prototypes(["dog", "cat"]).shape == (2, dim)
    keys = {n: str(encoder(n).key_config()) for n in ("clip_tiny", "siglip_tiny", "eva_tiny", "dinov2_tiny")}
    assert len(set(keys.values())) == 4


def test_dinov2_loads_by_hub_id_offline_with_the_checkpoints_preprocessing(tmp_path, hf_home, fresh_hub):
    from transformers import Dinov2Model
    snap = dinov2_snapshot(hf_home)
    enc = encoder("dinov2_b14")
    assert enc.preprocessing() == {"resize": 36, "crop": 32, "interpolation": "bicubic",
                                   "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert enc.key_config()["weights"]["commit"] == snap.name           # keyed by the snapshot's commit
    files = [photo(tmp_path / "a.png"), photo(tmp_path / "b.png", 32, 48)]
    feats = enc.encode_files(files)
    net = Dinov2Model.from_pretrained(snap).eval()                       # the same weights, by hand
    x = torch.from_numpy(np.asarray(Image.open(files[0]))).permute(2, 0, 1)[None]
    with torch.no_grad():
        direct = net(pixel_values=enc._load()[0].embeddings.patch_embeddings.projection.weight.new_tensor(
            _hand_preprocess(x))).pooler_output
    assert torch.allclose(feats[0], direct[0] / direct[0].norm(), atol=1e-5)
    from sas.encoders.dinov2 import DINOv2Encoder
    with pytest.raises(ValueError, match="DINOv2 has no text tower"):
        DINOv2Encoder(prototypes="text")


def _hand_preprocess(x):
    """BitImageProcessor's steps, written out: shorter side 36 (bicubic), centre crop 32, ImageNet mean / std."""
    import torch.nn.functional as F
    x = x.float() / 255
    h, w = x.shape[-2:]
    s = 36 / min(h, w)
    x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bicubic", antialias=True, align_corners=False)
    x = x.clamp(0, 1)
    top, left = (x.shape[-2] - 32) // 2, (x.shape[-1] - 32) // 2
    x = x[..., top:top + 32, left:left + 32]
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return (x - mean) / std
