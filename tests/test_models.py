import pytest
import torch

from sas.models import build_model, count_parameters

# IDC counts at 224 px, 10 classes: a change in any layer shows here.
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
    with pytest.raises(ValueError, match="needs a _target_"):
        build_model({"depth": 10}, 10)
    with pytest.raises(ValueError, match="below 1 px"):
        build_model("convnet", 10, depth=6, image_size=32)
    with pytest.raises(ValueError, match="depth must be one of"):
        build_model("resnet_ap", 10, depth=12)


# ---- IDC fidelity (snu-mllab/Efficient-Dataset-Condensation models/resnet_ap.py), from its equations

def _gn(x, norm):
    return torch.nn.functional.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)


def _idc_resnet_ap_forward(model, x):
    """ResNetAP as IDC computes it, written from the equations with the model's own weights:
    stem conv -> norm -> ReLU -> pool; block conv1 -> norm -> ReLU -> [avg pool 2] -> conv2 -> norm,
    shortcut conv1x1 -> [avg pool 2] -> norm; sum -> ReLU; global mean; linear."""
    F = torch.nn.functional
    conv, norm, _, pool = model.stem
    x = F.relu(_gn(F.conv2d(x, conv.weight, padding=conv.padding), norm))
    if isinstance(pool, torch.nn.AvgPool2d):
        x = F.avg_pool2d(x, pool.kernel_size)
    for block in model.layers:
        c1, n1 = block.conv1[0], block.conv1[1]
        c2, n2 = block.conv2[0], block.conv2[1]
        down = len(block.conv1) == 4
        h = F.relu(_gn(F.conv2d(x, c1.weight, padding=1), n1))
        if down:
            h = F.avg_pool2d(h, 2)
        h = _gn(F.conv2d(h, c2.weight, padding=1), n2)
        if isinstance(block.shortcut, torch.nn.Identity):
            s = x
        else:
            sc, sn = block.shortcut[0], block.shortcut[-1]
            s = F.conv2d(x, sc.weight)
            s = _gn(F.avg_pool2d(s, 2) if down else s, sn)
        x = F.relu(h + s)
    return model.classifier(x.mean(dim=(2, 3)))


@pytest.mark.parametrize("options,size", [(dict(depth=10), 64), (dict(depth=18), 64),
                                          (dict(depth=10, width=32, stem_kernel=3, stem_pool=1), 32)])
def test_resnet_ap_matches_idc_block_order(options, size):
    torch.manual_seed(0)
    model = build_model("resnet_ap", 10, **options).eval()
    for m in model.modules():                       # non-trivial norm affines, so the order shows
        if isinstance(m, torch.nn.GroupNorm):
            torch.nn.init.normal_(m.weight, 1.0, 0.3)
            torch.nn.init.normal_(m.bias, 0.0, 0.3)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _idc_resnet_ap_forward(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,options", [("resnet_ap", dict(depth=10)), ("resnet", dict(depth=18))])
def test_conv_init_is_idc_he_fan_out(name, options):
    """IDC (resnet_ap.py, resnet.py): conv ~ N(0, sqrt(2 / (k k C_out))), norm weight 1 and bias 0.
    torchvision's ResNet init (kaiming_normal_, fan_out, relu) is the same distribution."""
    torch.manual_seed(0)
    model = build_model(name, 10, **options)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.weight.numel() >= 100_000:
            std = (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5
            assert abs(m.weight.mean().item()) < 0.02 * std
            assert abs(m.weight.std().item() / std - 1) < 0.02, (name, m)
        if isinstance(m, torch.nn.GroupNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))


def test_convnet_init_is_pytorch_default_as_in_idc():
    """IDC's ConvNet keeps PyTorch's default conv init: kaiming_uniform(a=sqrt(5)) -> U(+-1/sqrt(fan_in))."""
    torch.manual_seed(0)
    conv = build_model("convnet", 10, depth=6, width=128, image_size=224).features[4]
    bound = 1 / (128 * 9) ** 0.5
    assert conv.weight.abs().max().item() <= bound
    assert abs(conv.weight.std().item() / (bound / 3 ** 0.5) - 1) < 0.02


def test_cifar_resnet_ap10_is_idcs_cifar_variant():
    from hydra import compose, initialize_config_dir
    from pathlib import Path
    with initialize_config_dir(str(Path(__file__).parents[1] / "conf" / "model"), version_base=None):
        spec = compose("resnet_ap10_cifar")
    model = build_model(spec, 10)
    # 3x3 stem of width 32, stages 32/64/128/256, fc 256 -> 10 (counted by hand from IDC's layout)
    assert count_parameters(model) == 1_228_970
    assert model.stem[0].kernel_size == (3, 3) and isinstance(model.stem[3], torch.nn.Identity)
    assert model.classifier.in_features == 256
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
