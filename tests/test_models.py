import pytest
import torch

from sas.models import build_model, count_parameters

# IDC / PROTOCOL.md counts at 224 px, 10 classes: a change in any layer shows here.
PAPER_MODELS = [("convnet", dict(depth=6, width=128, image_size=224), 754_570),
                ("resnet_ap", dict(depth=10), 4_910_922),
                ("resnet", dict(depth=18), 11_181_642)]


@pytest.mark.parametrize("name,options,params", PAPER_MODELS, ids=[m[0] for m in PAPER_MODELS])
def test_parameter_counts(name, options, params):
    assert count_parameters(build_model(name, num_classes=10, **options)) == params


def test_instance_norm_everywhere():
    for name, options, _ in PAPER_MODELS:
        model = build_model(name, 10, **options)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
        assert norms and all(m.num_groups == m.num_channels for m in norms), name
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), name


def test_convnet6_shapes_at_224():
    model = build_model("convnet", 10, depth=6, width=128, image_size=224)
    assert model.classifier.in_features == 1152
    assert model(torch.randn(2, 3, 224, 224)).shape == (2, 10)


def test_resnet_ap_downsamples_by_average_pooling():
    model = build_model("resnet_ap", 10, depth=10)
    assert not any(m.stride not in ((1, 1),) for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    feats = model.layers(model.stem(torch.randn(1, 3, 224, 224)))
    assert feats.shape == (1, 512, 7, 7)


def test_small_inputs_and_bad_options():
    assert build_model("convnet", 10, depth=3, width=16, image_size=32)(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        build_model("vit", 10)
    with pytest.raises(ValueError, match="below 1 px"):
        build_model("convnet", 10, depth=6, image_size=32)
    with pytest.raises(ValueError, match="depth must be one of"):
        build_model("resnet_ap", 10, depth=12)
