"""K-Center's ResNet space: torchvision features, ImageNet evaluation preprocessing, weights from a file."""

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from sas.encoders.torchvision import TorchvisionEncoder


def test_features_are_the_pooled_penultimate_layer_of_the_eval_transform(tmp_path):
    torch.manual_seed(1)
    net = torchvision.models.resnet18(num_classes=1000).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pt")
    enc = TorchvisionEncoder(arch="resnet18", weights=str(tmp_path / "r18.pt"), image_size=48, resize_size=64)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    feats = enc.encode_files(paths)
    # reference: shorter side 64, centre crop 64 then 48 (= Resize(64) + CenterCrop(48)), ImageNet mean / std,
    # torchvision's resnet18 up to its average pool, L2-normalised
    from torchvision.transforms import functional as TF
    ref = []
    for p in paths:
        img = TF.center_crop(TF.resize(Image.open(p).convert("RGB"), 64, antialias=True), 48)
        x = TF.normalize(TF.to_tensor(img), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])[None]
        net.fc = torch.nn.Identity()
        with torch.no_grad():
            f = net(x)[0]
        ref.append(f / f.norm())
    torch.testing.assert_close(feats, torch.stack(ref), rtol=1e-4, atol=1e-5)
    assert feats.shape == (3, 512)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="encoder.arch 'resnet5000'"):
        TorchvisionEncoder(arch="resnet5000")
    with pytest.raises(FileNotFoundError, match="encoder.weights file not found"):
        TorchvisionEncoder(weights=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="no text tower"):
        TorchvisionEncoder(weights=None).text_prototypes(["a"])
    key = TorchvisionEncoder(weights=None).key_config()
    assert key["arch"] == "resnet50" and key["weights"] is None and key["init_seed"] == 0


def test_paper_config_is_resnet50_imagenet():
    from pathlib import Path

    import yaml
    cfg = yaml.safe_load((Path(__file__).parents[1] / "conf" / "encoder" / "resnet50.yaml").read_text())
    assert (cfg["arch"], cfg["weights"], cfg["image_size"], cfg["resize_size"]) == ("resnet50", "IMAGENET1K_V1", 224, 256)
