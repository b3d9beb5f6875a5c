"""The published artifacts, written in their exact on-disk layouts (tests/published.py), loaded through the code a
user's run takes: hub ids from a Hugging Face cache, open_clip's tag, torchvision's weights names, the released
dataset layouts. Offline, with no warning on the way."""

import contextlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from published import (DIT_REPO, OPENAI_CLIP_REPO, accept_cifar10_md5s, cifar10_batches, commit_of, dit_pipeline,
                       fastai_release, imagenet_subset, sd_vae, torchvision_weights, vae_model)
from sas.config import ConfigError, build_plan
from sas.data.classes import get_class_table
from sas.data.images import DataError
from sas.data.real import RealData
from sas.encoders.clip import OpenCLIPEncoder
from sas.hub import HUB_TIMEOUT, WeightsNotFound, hub_online, resolve
from sas.pools.base import generate_pool
from sas.pools.dit import DiTSource

ROOT = Path(__file__).resolve().parents[1]
WOOF = get_class_table("imagewoof")
LIBRARIES = ("", "diffusers", "transformers", "huggingface_hub", "open_clip", "torchvision", "pytorch_lightning",
             "lightning_fabric", "wandb", "sas")


@contextlib.contextmanager
def no_warnings():
    """Fail on any warning a user would see: a log record at WARNING or above from any library, or a Python
    warning of the kinds shown by default (not DeprecationWarning, which Python hides outside __main__), with
    the filters distill.py / train.py set (sas.console.quiet)."""
    from sas.console import quiet
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(f"{record.name}: {record.getMessage()}")

    keep = Keep(logging.WARNING)
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    for lg in loggers:
        lg.addHandler(keep)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet()
            yield
    finally:
        for lg in loggers:
            lg.removeHandler(keep)
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert not (records or shown), records + shown


def config(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("distill", overrides=list(overrides))


def png_files(folder, n=3, size=40):
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    files = []
    for i in range(n):
        arr = (torch.rand(size, size + 8, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(folder / f"{i}.png")
        files.append(str(folder / f"{i}.png"))
    return files


# ----------------------------------------------------------------------------- CLIP: the activation OpenAI trained

def test_clip_b32_config_builds_openais_network_with_quickgelu():
    enc = instantiate(config("encoder=clip_b32", "encoder.pretrained=null").encoder, _convert_="all")
    assert enc.model == "ViT-B-32-quickgelu" and enc.activation() == "quick_gelu"
    model = enc._load()[0]
    activations = {type(m).__name__ for m in model.modules() if type(m).__name__ in ("QuickGELU", "GELU")}
    assert activations == {"QuickGELU"}                           # every MLP of both towers
    assert enc.key_config()["activation"] == "quick_gelu"         # embeddings are keyed by it


def test_a_model_tag_pair_of_other_activations_is_refused_naming_both(tmp_path):
    with pytest.raises(ValueError, match=r"encoder.model 'ViT-B-32' builds GELU, but open_clip's 'openai' weights "
                                         r"were trained with QuickGELU: use encoder.model=ViT-B-32-quickgelu"):
        OpenCLIPEncoder(model="ViT-B-32", pretrained="openai")
    OpenCLIPEncoder(model="ViT-B-32", pretrained="laion2b_s34b_b79k")   # trained with GELU: the plain model
    with pytest.raises(ValueError, match=r"no pretrained tag 'opnai' for encoder.model 'ViT-B-32-quickgelu'"):
        OpenCLIPEncoder(pretrained="opnai")
    with pytest.raises(ConfigError, match=r"invalid encoder config: .*'ViT-B-32' builds GELU.*'openai'"):
        build_plan(config("experiment=smoke", "encoder=clip_b32", "encoder.model=ViT-B-32",
                          f"paths.cache_dir={tmp_path / 'cache'}"))
    assert not (tmp_path / "cache").exists()                      # refused before anything was loaded or written


def test_openai_weights_load_by_tag_from_the_hub_cache_offline(openai_clip, fresh_hub, tmp_path):
    files = png_files(tmp_path / "imgs")
    enc = OpenCLIPEncoder(batch_size=2)                           # ViT-B-32-quickgelu / openai: clip_b32.yaml
    with no_warnings():
        feats = enc.encode_files(files)
    from safetensors.torch import load_file
    published = load_file(openai_clip / "open_clip_model.safetensors")
    model, preprocess, _, _ = enc._load()
    assert torch.equal(model.visual.conv1.weight, published["visual.conv1.weight"])   # the cached file's weights
    assert feats.shape == (3, 512) and torch.allclose(feats.norm(dim=1), torch.ones(3))
    assert enc.key_config()["pretrained"] == {"tag": "openai", "hub": OPENAI_CLIP_REPO, "commit": openai_clip.name}
    normalize = preprocess.transforms[-1]
    assert tuple(normalize.mean) == pytest.approx((0.48145466, 0.4578275, 0.40821073))   # OpenAI's statistics


# ----------------------------------------------------------------------------- DiT and VAE snapshots

@pytest.fixture
def dit_hub(hf_home, fresh_hub):
    """facebook/DiT-XL-2-256 (the 2022 Transformer2DModel config) and stabilityai/sd-vae-ft-mse (the 2022 attention
    key names) in the Hugging Face cache, tiny."""
    dit_pipeline(hf_home)
    sd_vae(hf_home, "stabilityai/sd-vae-ft-mse")
    sd_vae(hf_home, "stabilityai/sd-vae-ft-ema", seed=3)
    return hf_home


def test_dit_pool_from_the_published_snapshots_offline(dit_hub, tmp_path, monkeypatch):
    source = lambda: DiTSource(num_inference_steps=2, batch=10)             # noqa: E731  (pool=dit's hub ids)
    src = source()
    with no_warnings():
        store = generate_pool(src, WOOF, 1, seed=0, cache_dir=tmp_path, progress=False)
    transformer, _, vae, _, _ = src._load()
    assert all(b.norm1.emb.time_proj.downscale_freq_shift == 0 for b in transformer.transformer_blocks)
    assert "cross_attention_dim" not in transformer.config                # the legacy keys are dropped
    _, reference = vae_model(seed=2)                                      # the published VAE, before renaming
    attn = vae.encoder.mid_block.attentions[0]
    assert torch.equal(attn.to_q.weight, reference.encoder.mid_block.attentions[0].to_q.weight)   # query -> to_q
    key = json.loads((store.root / "meta.json").read_text())["generator"]
    assert key["model"] == {"hub": DIT_REPO, "commit": commit_of(f"{DIT_REPO}@main")}
    assert key["vae"] == {"hub": "stabilityai/sd-vae-ft-mse", "commit": commit_of("stabilityai/sd-vae-ft-mse@main")}

    # a complete pool is found without loading the DiT or the VAE
    monkeypatch.setattr(DiTSource, "_load", lambda self: pytest.fail("weights loaded for a complete pool"))
    assert generate_pool(source(), WOOF, 1, 0, tmp_path, progress=False).root == store.root
    monkeypatch.undo()

    # the same hub id at another commit (a new revision, or another HF_HOME) is another pool, never the old one
    dit_pipeline(dit_hub, seed=7, commit=commit_of("a later revision"))
    resolve.cache_clear()
    assert generate_pool(source(), WOOF, 1, 0, tmp_path, progress=False).root != store.root
    pinned = DiTSource(num_inference_steps=2, batch=10, revision=commit_of(f"{DIT_REPO}@main"))
    assert generate_pool(pinned, WOOF, 1, 0, tmp_path, progress=False).root == store.root   # revision pins it


def test_a_saved_dit_loads_without_config_warnings(dit_hub, tmp_path):
    from sas.generators.difffit import add_difffit, fold_difffit
    from sas.generators.dit import load_transformer
    tuned = add_difffit(load_transformer(DIT_REPO), blocks=1)
    fold_difffit(tuned).save_pretrained(tmp_path / "transformer")        # what train.py generator=minimax exports
    saved = json.loads((tmp_path / "transformer" / "config.json").read_text())
    assert not {"cross_attention_dim", "num_vector_embeds", "only_cross_attention", "use_linear_projection"} & \
        set(saved)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger("diffusers").addHandler(handler)
    try:
        load_transformer(str(tmp_path))
    finally:
        logging.getLogger("diffusers").removeHandler(handler)
    assert not records, records


def test_an_unreachable_hub_is_found_at_once_and_the_cache_named(monkeypatch, fresh_hub):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")               # nothing listens there
    hub_online.cache_clear()
    try:
        start = time.perf_counter()
        assert not hub_online()
        assert time.perf_counter() - start < HUB_TIMEOUT + 0.5              # no minute of retries
        assert os.environ["HF_HUB_OFFLINE"] == "1"                         # the libraries stay offline too
        with pytest.raises(WeightsNotFound, match=r"'nobody/nothing' \(revision main\) is not in the local Hugging "
                                                  r"Face cache .*`hf download nobody/nothing`"):
            resolve("nobody/nothing")
    finally:
        hub_online.cache_clear()


# ----------------------------------------------------------------------------- soft-label teachers

def teacher_protocol(**kw):
    from sas.evaluation.softlabel import SoftLabelProtocol
    return SoftLabelProtocol(image_size=32, progress=False, **kw)


def test_torchvision_imagenet_teacher_reads_the_subsets_imagenet_logits(monkeypatch):
    path = torchvision_weights(os.environ["TORCH_HOME"], "ResNet18_Weights.IMAGENET1K_V1")
    assert path.name == "resnet18-f37072fd.pth"
    protocol = teacher_protocol(teacher={"_target_": "sas.models.resnet.resnet", "depth": 18, "norm": "batch"},
                                teacher_weights="torchvision:ResNet18_Weights.IMAGENET1K_V1")
    monkeypatch.setattr("torch.hub.load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("downloaded although TORCH_HOME has the file"), raising=True)
    with no_warnings():
        protocol.check(WOOF)
    import torchvision
    full = torchvision.models.resnet18(num_classes=1000).eval()
    full.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(protocol._teacher(x), full(x)[:, list(WOOF.imagenet_ids)], atol=1e-5)


def test_rdeds_per_subset_teacher_files_load_in_imagefolder_order(tmp_path):
    from sas.models.convnet import ConvNet
    from sas.models.resnet import resnet
    order = sorted(WOOF.folders)                                 # RDED trained on ImageFolder: sorted wnids
    to_sorted = [order.index(f) for f in WOOF.folders]
    torch.manual_seed(0)
    net = resnet(num_classes=10, depth=18, norm="batch").eval()
    torch.save({"model": net.state_dict()}, tmp_path / "imagenet-woof_resnet18.pth")   # RDED's file layout
    protocol = teacher_protocol(teacher={"_target_": "sas.models.resnet.resnet", "depth": 18, "norm": "batch"},
                                teacher_weights=str(tmp_path / "imagenet-woof_resnet18.pth"))
    protocol.check(WOOF)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(protocol._teacher(x), net(x)[:, to_sorted], atol=1e-5)
    # RDED's ConvNets name their layers layers.conv.<d> / layers.norm.<d>
    conv = ConvNet(num_classes=10, depth=3, width=16, norm="batch", image_size=32).eval()
    rded = {}
    for k, v in conv.state_dict().items():
        if k.startswith("features."):
            i, rest = k.split(".", 2)[1:]
            k = f"layers.{'conv' if int(i) % 4 == 0 else 'norm'}.{int(i) // 4}.{rest}"
        rded[k] = v
    torch.save({"model": rded}, tmp_path / "imagenet-woof_conv3.pth")
    protocol = teacher_protocol(teacher={"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 16,
                                         "norm": "batch"}, teacher_weights=str(tmp_path / "imagenet-woof_conv3.pth"))
    protocol.check(WOOF)
    with torch.no_grad():
        assert torch.allclose(protocol._teacher(x), conv(x)[:, to_sorted], atol=1e-5)


def test_a_bad_teacher_is_refused_when_the_config_is_checked(tmp_path, monkeypatch):
    base = ["experiment=smoke", "dataset=imagewoof", f"paths.data_dir={tmp_path / 'data'}", "eval=softlabel_fast",
            "eval.teacher={_target_: sas.models.convnet.ConvNet, depth: 2, width: 8}",
            f"paths.cache_dir={tmp_path / 'cache'}"]
    imagenet_subset(tmp_path / "data" / "imagenet", WOOF, 1, 1, size=16)
    with pytest.raises(ConfigError, match=r"eval.teacher_weights: no such file: .*missing.pth"):
        build_plan(config(*base, f"eval.teacher_weights={tmp_path / 'missing.pth'}"))
    from sas.models.convnet import ConvNet
    torch.save(ConvNet(num_classes=5, depth=2, width=8, image_size=32).state_dict(), tmp_path / "five.pth")
    with pytest.raises(ConfigError, match=r"the teacher has 5 outputs: neither ImageNet-1K's 1,000 nor the 10"):
        build_plan(config(*base, f"eval.teacher_weights={tmp_path / 'five.pth'}"))
    with pytest.raises(ConfigError, match=r"torchvision has no weights 'ResNet18_Weights.IMAGENET1K_V9'"):
        build_plan(config(*base, "eval.teacher_weights=torchvision:ResNet18_Weights.IMAGENET1K_V9"))
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("no network")
    monkeypatch.setattr("torch.hub.load_state_dict_from_url", offline)
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline, raising=False)
    with pytest.raises(ConfigError, match=r"resnet34-b627a593.pth is missing and cannot be downloaded"):
        build_plan(config(*base, "eval.teacher_weights=torchvision:ResNet34_Weights.IMAGENET1K_V1"))
    assert not (tmp_path / "cache").exists()                     # all before any pool work


# ----------------------------------------------------------------------------- released dataset layouts

def test_imagewoof_in_the_imagenet_layout_with_odd_files(tmp_path):
    imagenet_subset(tmp_path / "imagenet", WOOF, train_per_class=3, val_per_class=2)
    data = RealData(name="imagewoof", data_dir=str(tmp_path), image_size=32)    # root: <data_dir>/imagenet
    data.check()
    train = data.load("train")
    assert len(train) == 30 and train.images.shape[1:] == (3, 32, 32) and train.per_class() == [3] * 10
    grey = train.images[0]                                       # class 0's first file is a grayscale JPEG
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert "ImageNet layout" in train.source and str(tmp_path / "imagenet" / "train") in train.source


def test_the_fastai_release_is_read_where_it_unpacks(tmp_path):
    fastai_release(tmp_path, WOOF, train_per_class=2, val_per_class=1)            # <data_dir>/imagewoof2
    data = RealData(name="imagewoof", data_dir=str(tmp_path), layout="fastai", image_size=16)
    data.check()
    assert len(data.load("val")) == 10 and "fastai imagewoof2 release" in data.load("val").source
    with pytest.raises(DataError, match=r"imagenet/train\. .*The fastai imagewoof2 release is at .*imagewoof2: add "
                                        r"dataset.layout=fastai"):
        RealData(name="imagewoof", data_dir=str(tmp_path)).check()             # the ImageNet layout is not there
    with pytest.raises(DataError) as err:
        RealData(name="imagewoof", data_dir=str(tmp_path / "elsewhere"), layout="fastai").check()
    assert "dataset.download=true" in str(err.value) and "layout=fastai" not in str(err.value)


def test_cifar10_as_torchvisions_pickles(tmp_path, monkeypatch):
    md5s = cifar10_batches(tmp_path / "cifar10", per_class=3, test_per_class=2)
    accept_cifar10_md5s(monkeypatch, md5s)                       # the emulated files stand in for the release
    data = RealData(name="cifar10", layout="cifar10", data_dir=str(tmp_path), image_size=32, download=True)
    data.check()
    train, val = data.load("train"), data.load("val")
    assert len(train) == 150 and len(val) == 20 and train.per_class() == [15] * 10
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"cut short")
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", offline)
    with pytest.raises(DataError, match=r"CIFAR-10 files under .*cifar-10-batches-py are not torchvision's release "
                                        r"\(data_batch_3: md5 mismatch\); the download failed \(URLError.*unpack "
                                        r"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"):
        data.check()


# ----------------------------------------------------------------------------- a whole run, as a user runs it

def test_distill_with_the_presets_ids_over_published_artifacts(dit_hub, openai_clip, tmp_path):
    from sas.pipeline import run
    imagenet_subset(tmp_path / "data" / "imagenet", WOOF, train_per_class=2, val_per_class=1, size=40)
    torchvision_weights(os.environ["TORCH_HOME"], "ResNet18_Weights.IMAGENET1K_V1")
    cfg = config("pool=dit", "dataset=imagewoof", "encoder=clip_b32", f"paths.data_dir={tmp_path / 'data'}",
                 f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'run'}",
                 "sampler.ipc=1", "sampler.pool_mult=2", "pool.source.num_inference_steps=2", "pool.source.batch=20",
                 "model=convnet_tiny", "eval=softlabel_fast", "eval.image_size=32", "eval.epochs=1",
                 "eval.evaluations=1", "eval.repeats=1",
                 "eval.teacher._target_=sas.models.resnet.resnet", "eval.teacher.depth=18", "eval.teacher.norm=batch",
                 "~eval.teacher.width", "eval.teacher_weights=torchvision:ResNet18_Weights.IMAGENET1K_V1",
                 "logger.mode=offline", "pictures=false", "progress=false")
    with no_warnings():
        run(cfg, choices={"sampler": "sas"})
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["pool_files"] == 20 and len(res["samplers"]["sas"]["evaluation"]["repeats"]) == 1
    assert "ImageNet layout" in res["samplers"]["sas"]["evaluation"]["val_source"]


def test_real_pools_of_mixed_sizes_log_to_wandb_without_warnings(tmp_path):
    import torch

    from sas.artifacts import EncodedPool, Pool, PoolSelection
    from sas.tracking import THUMBNAIL, Tracker
    files = png_files(tmp_path / "a", n=2, size=40) + png_files(tmp_path / "b", n=2, size=64)   # real photos vary
    encoded = EncodedPool(Pool(tuple(files), (0, 0, 1, 1), WOOF), torch.zeros(4, 2), None, "")
    picked = PoolSelection("sas", {"ipc": 1, "pool_mult": 2}, encoded, (0, 3), {"margin": [0.1, 0.2, 0.3, 0.4]})
    tracker = Tracker({"name": "t"}, tmp_path / "run", "abc123", {"sampler": "sas"}, mode="offline")
    try:
        with no_warnings():
            tracker.log_selection(picked)
    finally:
        tracker.finish()
    from PIL import Image
    logged = sorted((tmp_path / "run").rglob("media/images/sas/selected*.png"))
    assert len(logged) == 2 and {Image.open(p).size for p in logged} == {(THUMBNAIL, THUMBNAIL)}
