"""The CLIP semantic encoder (open_clip) of SAS: image embeddings and text prototypes.

    enc = OpenCLIPEncoder(model="ViT-B-32-quickgelu", pretrained="openai")
    feats = enc.encode_files(paths)                 # (N, d) L2-normalised float32 (CPU)
    protos = enc.text_prototypes(["beagle", ...])   # (C, d) from "A photo of a {}"

Any open_clip model name works with a pretrained tag, a local checkpoint path
(pretrained="/path/ckpt.pt"), or None for random init. The packaged
"tiny-clip" config is a small random-init CLIP for tests and the smoke preset; "tiny-sigmoid" (SigLIP's
architecture: timm ViT with attention-pool head, bidirectional text pooled at the last token) and "tiny-eva"
(timm EVA-02 tower) are the same for SigLIP and EVA-02-CLIP (conf/encoder/siglip_tiny, eva_tiny); the timm
towers run at 224 px, as open_clip builds them.

Activation: OpenAI's CLIP weights (and every open_clip tag marked quick_gelu) were trained with QuickGELU,
x * sigmoid(1.702 x); open_clip builds `ViT-B-32` with plain GELU and only warns when such weights are
loaded into it. Here a model / tag pair whose activations differ is refused when the config is checked,
naming both and the model to use instead (`ViT-B-32-quickgelu` for `openai`), and the activation is part of
the embeddings' cache key. A tag's weights file comes through sas.hub (its hub repo at the commit `revision`
resolves to; the local cache when the hub is offline) with the tag's own preprocessing (mean, std,
interpolation, resize mode).

Preprocessing: "pil" is open_clip's own transform (exactly what the model was
trained with), run in a thread pool; "tensor" decodes in threads and resizes,
crops and normalises batched on the encoder's device (faster on a GPU,
bicubic antialiased like PIL up to rounding).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sas.encoders.base import Encoder

__all__ = ["OpenCLIPEncoder", "register_packaged_configs"]

_PACKAGED = Path(__file__).parent


PACKAGED = ("tiny-clip", "tiny-sigmoid", "tiny-eva")     # tiny random-init configs (tests, smoke presets); not
                                                          # named *siglip*: open_clip would fetch SigLIP's tokenizer


def register_packaged_configs() -> None:
    import open_clip
    for name in PACKAGED:
        if name not in open_clip.list_models():
            open_clip.add_model_config(_PACKAGED / f"{name}.json")


def _open_clip():
    import open_clip
    register_packaged_configs()
    return open_clip


@dataclass
class OpenCLIPEncoder(Encoder):
    model: str = "ViT-B-32-quickgelu"
    pretrained: str | None = "openai"        # tag, local checkpoint file, or None (random init)
    revision: str | None = None              # of the tag's hub repo (None: main)
    template: str = "A photo of a {}"
    prototypes: str = "text"                 # text | visual
    preprocess: str = "pil"                  # pil | tensor
    batch_size: int = 256
    device: str = "auto"
    workers: int = 8
    init_seed: int = 0
    _loaded: tuple = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.prototypes not in ("text", "visual"):
            raise ValueError(f"encoder.prototypes must be text or visual, got '{self.prototypes}'")
        if self.preprocess not in ("pil", "tensor"):
            raise ValueError(f"encoder.preprocess must be pil or tensor, got '{self.preprocess}'")
        if "{}" not in self.template:
            raise ValueError(f"encoder.template must contain '{{}}' for the class name, got '{self.template}'")
        self.activation()                                       # the model exists; the tag exists and matches it

    # ------------------------------------------------------------------ what the weights are
    def _tag(self) -> dict:
        """open_clip's record of the pretrained tag ({} for a local file or random init)."""
        from sas.cache import is_local_path
        if self.pretrained is None or is_local_path(str(self.pretrained)):
            return {}
        open_clip = _open_clip()
        tag = open_clip.get_pretrained_cfg(self.model, str(self.pretrained))
        if not tag:
            raise ValueError(f"open_clip has no pretrained tag '{self.pretrained}' for encoder.model '{self.model}' "
                             f"(its tags: {open_clip.list_pretrained_tags_by_model(self.model)})")
        return tag

    def activation(self) -> str:
        """quick_gelu or gelu: what the model config builds, which must be what a tag's weights were trained with."""
        open_clip = _open_clip()
        cfg = open_clip.get_model_config(self.model)
        if cfg is None:
            raise ValueError(f"encoder.model '{self.model}' is not an open_clip model (open_clip.list_models())")
        quick = bool(cfg.get("quick_gelu", False))
        tag = self._tag()
        if tag and bool(tag.get("quick_gelu", False)) != quick:
            other = self.model.removesuffix("-quickgelu") if quick else f"{self.model}-quickgelu"
            raise ValueError(f"encoder.model '{self.model}' builds {'QuickGELU' if quick else 'GELU'}, but open_clip's "
                             f"'{self.pretrained}' weights were trained with {'GELU' if quick else 'QuickGELU'}: "
                             f"use encoder.model={other} with encoder.pretrained={self.pretrained}")
        return "quick_gelu" if quick else "gelu"

    def _weights_file(self) -> str | None:
        """The local file the weights load from: a tag's file from its hub repo (sas.hub), or the given file."""
        tag = self._tag()
        if not tag:
            return self.pretrained
        if not tag.get("hf_hub"):
            return str(self.pretrained)                        # a URL-only tag: open_clip fetches it itself
        repo, name = os.path.split(tag["hf_hub"])
        names = [name] if name else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        from sas.hub import hub_file
        return str(hub_file(repo, names, self.revision))

    def key_config(self) -> dict:
        from sas.cache import weights_id
        tag = self._tag()
        if tag.get("hf_hub"):
            from sas.hub import resolve
            weights = {"tag": self.pretrained, **resolve(os.path.split(tag["hf_hub"])[0], self.revision).key}
        elif tag:
            weights = {"tag": self.pretrained, "url": tag.get("url")}
        else:
            weights = weights_id(self.pretrained)
        return {"kind": "open_clip", "model": self.model, "activation": self.activation(), "pretrained": weights,
                "preprocess": self.preprocess,
                **({"init_seed": self.init_seed} if self.pretrained is None else {})}

    def _load(self):
        if self._loaded is None:
            open_clip = _open_clip()
            dev = torch.device("cuda" if self.device == "auto" and torch.cuda.is_available() else
                               ("cpu" if self.device == "auto" else self.device))
            torch.manual_seed(self.init_seed)
            tag = self._tag()                                 # the tag's own preprocessing, as open_clip's tag path
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model, pretrained=self._weights_file(), image_mean=tag.get("mean"), image_std=tag.get("std"),
                image_interpolation=tag.get("interpolation"), image_resize_mode=tag.get("resize_mode"))
            tokenizer = open_clip.get_tokenizer(self.model)
            self._loaded = (model.to(dev).eval(), preprocess, tokenizer, dev)
        return self._loaded

    @property
    def dim(self) -> int:
        model = self._load()[0]
        return int(getattr(model, "embed_dim", None) or model.text_projection.shape[1])

    @torch.no_grad()
    def _encode_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        model, _, _, dev = self._load()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            f = model.encode_image(pixels.to(dev, non_blocking=True))
        f = f.float()
        return (f / f.norm(dim=-1, keepdim=True)).cpu()

    def _tensor_preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> normalised (B, 3, S, S) on the device, as the model's preprocessing config says
        (open_clip's, from the tag): resize_mode shortest (shorter side to S, centre crop; OpenAI CLIP, EVA) or
        squash (straight to S x S; SigLIP), its interpolation, its mean / std."""
        model, _, _, dev = self._load()
        cfg = model.visual.preprocess_cfg
        S = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"]
        mode, interp = cfg.get("resize_mode", "shortest"), cfg.get("interpolation", "bicubic")
        if mode not in ("shortest", "squash"):
            raise ValueError(f"encoder.preprocess=tensor handles resize_mode shortest or squash, not '{mode}': use "
                             "encoder.preprocess=pil")
        from sas.data.augment import normalize, resize_center_crop
        x = resize_center_crop(images.to(dev, non_blocking=True).float() / 255, S, S, mode, interp)   # (B, 3, S, S)
        return normalize(x, tuple(cfg["mean"]), tuple(cfg["std"]))          # constants cached per device

    def encode_tensors(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, 3, H, W) -> (N, d) normalised embeddings (hands generator output straight in)."""
        out = [self._encode_batch(self._tensor_preprocess(images[i:i + self.batch_size]))
               for i in range(0, len(images), self.batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.dim)

    def encode_files(self, files: list[str], progress: bool = False) -> torch.Tensor:
        """Image files -> (N, d) normalised embeddings."""
        from tqdm.auto import tqdm

        from sas.data.images import open_rgb

        _, preprocess, _, _ = self._load()

        def load(path):
            img = open_rgb(path)                                   # every PIL mode decoded the same way
            if self.preprocess == "pil":
                return preprocess(img)
            return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)

        out = []
        starts = list(range(0, len(files), self.batch_size))
        with ThreadPoolExecutor(min(self.workers, os.cpu_count() or 1)) as decode, ThreadPoolExecutor(1) as ahead:
            def batch_at(i):
                return list(decode.map(load, files[i:i + self.batch_size]))

            nxt = ahead.submit(batch_at, starts[0]) if starts else None
            for j, i in enumerate(tqdm(starts, desc="encode", unit="batch", disable=not progress)):
                batch = nxt.result()
                if j + 1 < len(starts):                  # decode the next batch while this one encodes
                    nxt = ahead.submit(batch_at, starts[j + 1])
                if self.preprocess == "pil":
                    out.append(self._encode_batch(torch.stack(batch)))
                elif len({b.shape for b in batch}) == 1:  # a generated pool: one size, one batched resize
                    out.append(self._encode_batch(self._tensor_preprocess(torch.stack(batch))))
                else:  # sizes differ: preprocess each to S, then batch
                    out.append(self._encode_batch(torch.cat([self._tensor_preprocess(b[None]) for b in batch])))
        return torch.cat(out) if out else torch.empty(0, self.dim)

    @torch.no_grad()
    def text_prototypes(self, class_names: list[str]) -> torch.Tensor:
        """(C, d) normalised text embeddings of the prompt template filled with each class name."""
        model, _, tokenizer, dev = self._load()
        tokens = tokenizer([self.template.format(n) for n in class_names]).to(dev)
        f = model.encode_text(tokens).float()
        return (f / f.norm(dim=-1, keepdim=True)).cpu()
