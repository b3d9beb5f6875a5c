"""Models and data written exactly as users download them, so tests load them through the user's code path.

    snap = dit_pipeline(hf_home)                       # facebook/DiT-XL-2-256 in a Hugging Face cache
    snap = sd_vae(hf_home, "stabilityai/sd-vae-ft-mse")  # the VAE, with its 2022 attention key names
    snap = open_clip_tag(hf_home)                      # timm/vit_base_patch32_clip_224.openai (open_clip's file)
    path = torchvision_weights(torch_home, "ResNet18_Weights.IMAGENET1K_V1")   # resnet18-f37072fd.pth
    imagenet_subset(data_dir / "imagenet", woof)       # <root>/{train,val}/<wnid>/*.JPEG, odd JPEGs included
    fastai_release(data_dir, woof)                     # <data_dir>/imagewoof2/{train,val}/<wnid>/*.JPEG
    md5s = cifar10_batches(root)                       # <root>/cifar-10-batches-py/ (torchvision's pickles)

A Hugging Face cache is HF_HOME/hub/models--<org>--<name>/ with blobs/<sha256>, snapshots/<commit>/<file>
(symbolic links to the blobs) and refs/<revision> holding the commit: what `hf download` leaves. Configs carry
the published class names and keys (DiT's 2022 `Transformer2DModel` config; the VAE's 2022 attention weight
names query / key / value / proj_attn); weights are random, at a tiny size unless `real_size` asks for the
published one (benchmarks/published.py runs the presets on those).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import torch

DIT_REPO = "facebook/DiT-XL-2-256"
OPENAI_CLIP_REPO = "timm/vit_base_patch32_clip_224.openai"

# facebook/DiT-XL-2-256 transformer/config.json: diffusers 0.12's Transformer2DModel config of DiT-XL/2
DIT_XL_CONFIG = {
    "_class_name": "Transformer2DModel", "_diffusers_version": "0.12.0.dev0", "activation_fn": "gelu-approximate",
    "attention_bias": True, "attention_head_dim": 72, "cross_attention_dim": None, "dropout": 0.0,
    "in_channels": 4, "norm_elementwise_affine": False, "norm_num_groups": 32, "norm_type": "ada_norm_zero",
    "num_attention_heads": 16, "num_embeds_ada_norm": 1000, "num_layers": 28, "num_vector_embeds": None,
    "only_cross_attention": False, "out_channels": 8, "patch_size": 2, "sample_size": 32,
    "upcast_attention": False, "use_linear_projection": False}
DIT_TINY = {"attention_head_dim": 8, "num_attention_heads": 2, "num_layers": 2, "sample_size": 8}

# stabilityai/sd-vae-ft-mse / -ema config.json (diffusers 0.4's AutoencoderKL)
SD_VAE_CONFIG = {
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3,
    "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 256,
    "up_block_types": ["UpDecoderBlock2D"] * 4}
VAE_TINY = {"block_out_channels": [8, 8], "down_block_types": ["DownEncoderBlock2D"] * 2,
            "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1, "norm_num_groups": 4,
            "sample_size": 16}

# what the 2022 diffusers attention blocks called today's to_q / to_k / to_v / to_out.0
LEGACY_ATTENTION = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def commit_of(text: str) -> str:
    """A 40-hex commit id (stable for a label)."""
    return hashlib.sha1(text.encode()).hexdigest()


def hf_repo(hf_home, repo_id: str, files: dict[str, bytes], revision: str = "main", commit: str | None = None) -> Path:
    """Write files as `hf download repo_id` leaves them in HF_HOME; returns the snapshot folder."""
    repo = Path(hf_home) / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = commit or commit_of(f"{repo_id}@{revision}")
    snap = repo / "snapshots" / commit
    for rel, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snap


def safetensors_bytes(state_dict: dict) -> bytes:
    from safetensors.torch import save
    return save({k: v.detach().contiguous() for k, v in state_dict.items()})


def _json(d: dict) -> bytes:
    return json.dumps(d, indent=2, sort_keys=True).encode()


def dit_transformer(real_size: bool = False, seed: int = 0, **overrides):
    """(config.json dict as published, a random-init DiTTransformer2DModel of that config)."""
    from diffusers import DiTTransformer2DModel
    import inspect

    config = {**DIT_XL_CONFIG, **({} if real_size else DIT_TINY), **overrides}
    takes = set(inspect.signature(DiTTransformer2DModel.__init__).parameters)
    torch.manual_seed(seed)
    model = DiTTransformer2DModel(**{k: v for k, v in config.items() if k in takes})
    shared = model.transformer_blocks[0].norm1.emb.state_dict()     # the published weights hold one embedder
    for block in model.transformer_blocks[1:]:                      # (the original's) copied into every block
        block.norm1.emb.load_state_dict(shared)
    return config, model


def vae_model(real_size: bool = False, seed: int = 0):
    from diffusers import AutoencoderKL
    config = {**SD_VAE_CONFIG, **({} if real_size else VAE_TINY)}
    torch.manual_seed(seed)
    return config, AutoencoderKL(**{k: v for k, v in config.items() if not k.startswith("_")})


def legacy_vae_state_dict(vae) -> dict:
    """The VAE's weights under the 2022 attention names."""
    out = {}
    for k, v in vae.state_dict().items():
        for new, old in LEGACY_ATTENTION.items():
            k = k.replace(f".{new}.", f".{old}.")
        out[k] = v
    return out


def dit_pipeline(hf_home, real_size: bool = False, seed: int = 0, revision: str = "main", commit: str | None = None,
                 **overrides) -> Path:
    """facebook/DiT-XL-2-256 as published: model_index.json, transformer/ (Transformer2DModel config), vae/ (2022
    key names), scheduler/."""
    config, transformer = dit_transformer(real_size, seed, **overrides)
    vae_config, vae = vae_model(real_size, seed + 1)
    files = {
        "model_index.json": _json({"_class_name": "DiTPipeline", "_diffusers_version": "0.12.0.dev0",
                                   "scheduler": ["diffusers", "DDIMScheduler"],
                                   "transformer": ["diffusers", "Transformer2DModel"],
                                   "vae": ["diffusers", "AutoencoderKL"]}),
        "transformer/config.json": _json(config),
        "transformer/diffusion_pytorch_model.safetensors": safetensors_bytes(transformer.state_dict()),
        "vae/config.json": _json(vae_config),
        "vae/diffusion_pytorch_model.safetensors": safetensors_bytes(legacy_vae_state_dict(vae)),
        "scheduler/scheduler_config.json": _json({"_class_name": "DDIMScheduler", "_diffusers_version": "0.12.0.dev0",
                                                  "beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001,
                                                  "clip_sample": False, "num_train_timesteps": 1000})}
    return hf_repo(hf_home, DIT_REPO, files, revision, commit)


def sd_vae(hf_home, repo_id: str = "stabilityai/sd-vae-ft-mse", real_size: bool = False, seed: int = 2,
           commit: str | None = None) -> Path:
    config, vae = vae_model(real_size, seed)
    return hf_repo(hf_home, repo_id, {"config.json": _json(config),
                                      "diffusion_pytorch_model.safetensors":
                                          safetensors_bytes(legacy_vae_state_dict(vae))}, commit=commit)


def open_clip_tag(hf_home, model: str = "ViT-B-32-quickgelu", tag: str = "openai", seed: int = 0) -> Path:
    """The file open_clip fetches for a tag (its hub repo's open_clip_model.safetensors), random weights of the
    tag's real architecture; returns the snapshot folder."""
    import open_clip
    cfg = open_clip.get_pretrained_cfg(model, tag)
    repo = cfg["hf_hub"].rstrip("/")
    torch.manual_seed(seed)
    net = open_clip.create_model(model, pretrained=None)
    return hf_repo(hf_home, repo, {"open_clip_model.safetensors": safetensors_bytes(net.state_dict()),
                                   "open_clip_config.json": _json({"model_cfg": open_clip.get_model_config(model)})})


def torchvision_weights(torch_home, weights: str = "ResNet18_Weights.IMAGENET1K_V1", seed: int = 0) -> Path:
    """Random weights of the architecture under the file name torchvision downloads them to (TORCH_HOME/hub/
    checkpoints/<name>-<hash>.pth), so `weights=...` finds them without a download."""
    import torchvision
    enum = torchvision.models.get_weight(weights)
    arch = next(m for m in torchvision.models.list_models(module=torchvision.models)
                if torchvision.models.get_model_weights(m) is type(enum))
    torch.manual_seed(seed)
    net = torchvision.models.get_model(arch, weights=None, num_classes=len(enum.meta["categories"]))
    path = Path(torch_home) / "hub" / "checkpoints" / Path(enum.url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


# ----------------------------------------------------------------------------- datasets

def _photo(rng, size: int, label: int) -> np.ndarray:
    """An RGB image whose mean colour depends on its class (learnable, like a real class)."""
    base = np.array([(37 * label) % 256, (91 * label + 40) % 256, (53 * label + 90) % 256], dtype=np.float64)
    img = base + rng.normal(0, 30, (size, size + size // 3, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


ODD = ("grayscale", "cmyk", "progressive", "png_named_jpeg")   # what real ImageNet / fastai folders hold


def _write_jpeg(path: Path, arr: np.ndarray, odd: str | None) -> None:
    from PIL import Image
    img = Image.fromarray(arr)
    if odd == "grayscale":
        img.convert("L").save(path, format="JPEG")
    elif odd == "cmyk":
        img.convert("CMYK").save(path, format="JPEG")
    elif odd == "progressive":
        img.save(path, format="JPEG", progressive=True, quality=90)
    elif odd == "png_named_jpeg":
        img.save(path, format="PNG")                 # n02105855_2933.JPEG in ImageNet's train set is a PNG
    else:
        img.save(path, format="JPEG", quality=90)


def class_folders(root, table, per_class: int, size: int = 40, seed: int = 0, odd: bool = True) -> Path:
    """root/<wnid>/<wnid>_<k>.JPEG for every class of the table; the first classes get the odd files."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for c, folder in enumerate(table.folders):
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            kind = ODD[c] if odd and k == 0 and c < len(ODD) else None
            _write_jpeg(d / f"{folder}_{k}.JPEG", _photo(rng, size, c), kind)
    return root


def imagenet_subset(root, table, train_per_class: int = 4, val_per_class: int = 2, size: int = 40) -> Path:
    """The ImageNet layout of a 10-class subset: root/train/<wnid>/*.JPEG, root/val/<wnid>/*.JPEG."""
    class_folders(Path(root) / "train", table, train_per_class, size, seed=0)
    class_folders(Path(root) / "val", table, val_per_class, size, seed=1)
    return Path(root)


def fastai_release(data_dir, table, release: str = "imagewoof2", train_per_class: int = 4, val_per_class: int = 2,
                   size: int = 40) -> Path:
    """The fastai release as it unpacks: <data_dir>/<release>/{train,val}/<wnid>/*.JPEG, plus its noisy csv."""
    root = imagenet_subset(Path(data_dir) / release, table, train_per_class, val_per_class, size)
    (root / "noisy_imagewoof.csv").write_text("path,noisy_labels_0,is_valid\n")
    return root


def cifar10_batches(root, per_class: int = 3, test_per_class: int = 2, seed: int = 0) -> dict:
    """torchvision's CIFAR-10 layout (root/cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta, python
    pickles of uint8 rows (N, 3072) in CHW order and labels); returns {file name: md5} of what was written."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name: str, n_per_class: int, offset: int) -> None:
        labels = [c for c in range(10) for _ in range(n_per_class)]
        data = np.stack([_photo(rng, 32, c)[:, :32].transpose(2, 0, 1).reshape(-1) for c in labels])
        blob = {"batch_label": name, "labels": labels, "data": data,      # Python 2 pickles: str keys
                "filenames": [f"img_{offset + i}.png" for i in range(len(labels))]}
        (folder / name).write_bytes(pickle.dumps(blob, protocol=2))

    for i in range(1, 6):
        batch(f"data_batch_{i}", per_class, 1000 * i)
    batch("test_batch", test_per_class, 0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_cases_per_batch": 10 * per_class,
                                                        "num_vis": 3072}, protocol=2))
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def accept_cifar10_md5s(monkeypatch, md5s: dict) -> None:
    """Make torchvision's CIFAR10 integrity check accept the emulated files (their md5s, not the release's)."""
    from torchvision.datasets import CIFAR10
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5s[n]] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5s[n]] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5s[CIFAR10.meta["filename"]]})


DDPM_RELEASE_REPO = "Ketansomewhere/cifar10_conditional_diffusion1"


def ddpm_release(hf_home, real_size: bool = False, seed: int = 0) -> Path:
    """The CIFAR-10 weights the authors of the paper's [20] released, as train_conditional.py saves its pipeline:
    model_index.json, unet/ (the script's UNet2DModel, class_embed_type timestep, 10 classes), scheduler/
    (DDPMScheduler, squaredcos_cap_v2, x0 prediction). Tiny widths unless real_size."""
    from diffusers import DDPMScheduler, UNet2DModel

    unet_config = {"sample_size": 32, "in_channels": 3, "out_channels": 3, "layers_per_block": 2,
                   "block_out_channels": [128, 128, 256, 256, 512, 512],
                   "down_block_types": ["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
                   "up_block_types": ["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4,
                   "class_embed_type": "timestep", "num_class_embeds": 10}
    if not real_size:
        unet_config.update(layers_per_block=1, block_out_channels=[8, 8, 16, 16, 16, 16],
                           norm_num_groups=4, attention_head_dim=4)
    torch.manual_seed(seed)
    unet = UNet2DModel(**unet_config)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    files = {"model_index.json": _json({"_class_name": "DDPMPipelinenew", "_diffusers_version": "0.29.0.dev0",
                                        "scheduler": ["diffusers", "DDPMScheduler"],
                                        "unet": ["diffusers", "UNet2DModel"]}),
             "unet/config.json": _json({"_class_name": "UNet2DModel", "_diffusers_version": "0.29.0.dev0",
                                        **dict(unet.config)}),
             "unet/diffusion_pytorch_model.safetensors": safetensors_bytes(unet.state_dict()),
             "scheduler/scheduler_config.json": _json({"_class_name": "DDPMScheduler",
                                                       "_diffusers_version": "0.29.0.dev0",
                                                       **{k: v for k, v in dict(scheduler.config).items()
                                                          if not k.startswith("_")}})}
    return hf_repo(hf_home, DDPM_RELEASE_REPO, files)


def dinov2_snapshot(hf_home, repo_id: str = "facebook/dinov2-base", seed: int = 0) -> Path:
    """facebook/dinov2-base's files (config.json as Dinov2Config writes it, model.safetensors with transformers'
    key names, the BitImageProcessor preprocessor_config.json) for a tiny random-init DINOv2: resize 36 (the
    published 256), crop 32 (224), resample 3, ImageNet mean / std."""
    from transformers import Dinov2Config, Dinov2Model
    torch.manual_seed(seed)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       patch_size=8, image_size=32)
    net = Dinov2Model(cfg)
    processor = {"crop_size": {"height": 32, "width": 32}, "do_center_crop": True, "do_convert_rgb": True,
                 "do_normalize": True, "do_rescale": True, "do_resize": True,
                 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
                 "image_processor_type": "BitImageProcessor", "resample": 3, "rescale_factor": 1 / 255,
                 "size": {"shortest_edge": 36}}
    return hf_repo(hf_home, repo_id, {"config.json": cfg.to_json_string().encode(),
                                      "model.safetensors": safetensors_bytes(net.state_dict()),
                                      "preprocessor_config.json": _json(processor)})
