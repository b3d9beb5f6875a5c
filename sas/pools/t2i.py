"""Text-to-image pool source: any diffusers text-to-image pipeline, prompted with the dataset's class names.

    src = TextToImageSource(model="stabilityai/sdxl-turbo", num_inference_steps=1, guidance_scale=0.0)
    src = TextToImageSource(model="/models/sd-1.5", template="a photo of a {}, a type of dog")
    src.check(table); images = src.sample([0, 1], [g0, g1])      # (2, 3, S, S) uint8 at output_size

The pipeline loads by hub id or folder with diffusers' AutoPipelineForText2Image (Stable Diffusion 1.5 / 2.1,
SDXL, SDXL-Turbo, ...), or is built random-init from component configs (tests, the smoke preset). Every image
has its own torch Generator seeded from (pool seed, class, k), passed to the pipeline as a list, so pools nest
and resume exactly like DiT pools. Prompts: `template` with the class name (the dataset's class table, so
dataset=folder works as is), an optional `negative_prompt`; `guidance_scale`, `num_inference_steps`, the
generation `height` / `width` and the `scheduler` (null: the pipeline's own; else a diffusers scheduler class
name, built from the pipeline's scheduler config) are named values. The output is resized to `output_size`
(the pool's resolution, e.g. 256 like DiT pools) with a named filter (antialiased).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import torch

from sas.cache import is_local_path, weights_id
from sas.data.classes import ClassTable
from sas.devices import resolve_device_dtype
from sas.pools.base import GeneratedPool

__all__ = ["TextToImageSource", "byte_level_tokenizer"]

FILTERS = ("bicubic", "bilinear", "area", "nearest")


def byte_level_tokenizer(folder: Path, max_length: int = 77):
    """A CLIP tokenizer with the 256 byte symbols (and their end-of-word forms) and no merges: real text in,
    ids out, no download. For random-init pipelines only."""
    from transformers import CLIPTokenizer

    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    shifted = iter(range(256, 512))                # GPT-2's byte-to-symbol map: unprintable bytes move past 255
    symbols = [chr(b) if b in printable else chr(next(shifted)) for b in range(256)]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({f"{s}</w>": 256 + i for i, s in enumerate(symbols)})
    vocab.update({"<|startoftext|>": 512, "<|endoftext|>": 513})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)


@dataclass
class TextToImageSource(GeneratedPool):
    model: str | None = None                   # hub id or folder of a diffusers text-to-image pipeline
    revision: str | None = None                # of the hub repo (None: main)
    unet_config: dict | None = None            # random init instead (tests): UNet2DConditionModel config ...
    text_config: dict | None = None            # ... CLIPTextConfig fields ...
    vae_config: dict | None = None             # ... AutoencoderKL config
    init_seed: int = 0
    template: str = "a photo of a {}"          # the class name goes into {}
    negative_prompt: str | None = None
    guidance_scale: float = 7.5
    num_inference_steps: int = 50
    scheduler: str | None = None               # null: the pipeline's own; e.g. EulerDiscreteScheduler, DDIMScheduler
    height: int | None = None                  # generation size (null: the pipeline's default)
    width: int | None = None
    output_size: int = 256                     # the pool's images: resized (square, after a centre crop)
    resize_filter: str = "bicubic"             # bicubic | bilinear | area | nearest (antialiased when shrinking)
    device: str = "auto"
    dtype: str = "float16"                     # the pipeline's weights (float32 on a CPU)
    batch: int | str = "auto"
    _loaded: tuple = field(default=None, init=False, repr=False)

    def __post_init__(self):
        import string
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        except ValueError as err:                         # an unmatched brace
            raise ValueError(f"pool.source.template '{self.template}': {err}") from None
        if fields != [""]:
            raise ValueError(f"pool.source.template must hold exactly one '{{}}' for the class name and no other "
                             f"brace field (write '{{{{' / '}}}}' for a literal brace), got '{self.template}'")
        if self.resize_filter not in FILTERS:
            raise ValueError(f"pool.resize_filter must be one of {FILTERS}, got '{self.resize_filter}'")
        if self.model is None and self.unet_config is None:
            raise ValueError("a text-to-image pool needs model (hub id / folder) or unet_config (random init)")
        if self.model is not None and is_local_path(str(self.model)) and not Path(self.model).expanduser().is_dir():
            raise FileNotFoundError(f"pool.model folder not found: {self.model}")

    KIND: ClassVar[str] = "t2i"
    WEIGHT_FIELDS: ClassVar[tuple] = ("model", "revision", "unet_config", "text_config", "vae_config", "init_seed")

    def weights_key(self) -> dict:
        return ({"model": weights_id(self.model, self.revision)} if self.model else
                {"unet_config": self.unet_config, "text_config": self.text_config, "vae_config": self.vae_config,
                 "init_seed": self.init_seed})

    def device_dtype(self) -> tuple[torch.device, torch.dtype]:
        dev, dt = resolve_device_dtype(self.device, self.dtype)
        return dev, dt if dev.type == "cuda" else torch.float32    # half precision is a GPU setting

    def _load(self):
        if self._loaded is not None:
            return self._loaded
        dev, dt = self.device_dtype()
        if self.model is not None:
            from diffusers import AutoPipelineForText2Image

            from sas.hub import load_pretrained
            pipe = load_pretrained(AutoPipelineForText2Image, self.model, self.revision, torch_dtype=dt)
        else:
            pipe = self._random_pipeline()
        if self.scheduler:
            import diffusers
            if not hasattr(diffusers, self.scheduler):
                raise ValueError(f"pool.scheduler: diffusers has no scheduler '{self.scheduler}'")
            pipe.scheduler = getattr(diffusers, self.scheduler).from_config(pipe.scheduler.config)
        pipe = pipe.to(dev)                                  # weights already in dt (from_pretrained) or float32
        pipe.set_progress_bar_config(disable=True)          # the pool has its own bar
        self._loaded = (pipe, dev, dt)
        return pipe, dev, dt

    def _random_pipeline(self):
        from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        torch.manual_seed(self.init_seed)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=514, bos_token_id=512, eos_token_id=513, pad_token_id=513,
                                            **(self.text_config or {})))
        unet, vae = UNet2DConditionModel(**self.unet_config), AutoencoderKL(**(self.vae_config or {}))
        with tempfile.TemporaryDirectory(prefix="sas-tokenizer-") as folder:    # read into memory, then removed
            tokenizer = byte_level_tokenizer(Path(folder))
        scheduler = EulerDiscreteScheduler(steps_offset=1)
        return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)

    def check(self, table: ClassTable) -> None:
        """Any class table works (prompts come from the names); the pipeline loads here, before sampling."""
        self._table = table
        self._load()

    def prompts(self, labels: list[int]) -> list[str]:
        table = getattr(self, "_table", None)
        if table is None:
            raise RuntimeError("TextToImageSource.sample prompts with the class names: call check(table) first "
                               "(generate_pool does)")
        return [self.template.format(table.names[c]) for c in labels]

    def batch_size(self) -> int:
        if self.batch != "auto":
            return int(self.batch)
        _, dev, _ = self._load()
        return 8 if dev.type == "cuda" else 4

    @torch.no_grad()
    def sample(self, labels: list[int], generators: list[torch.Generator]) -> torch.Tensor:
        import torch.nn.functional as F
        from torchvision.transforms.functional import center_crop

        pipe, dev, _ = self._load()
        out = pipe(prompt=self.prompts(labels),
                   negative_prompt=[self.negative_prompt] * len(labels) if self.negative_prompt else None,
                   num_inference_steps=self.num_inference_steps, guidance_scale=self.guidance_scale,
                   generator=generators, height=self.height, width=self.width, output_type="pt").images
        x = out.float().clamp(0, 1)                                             # (B, 3, H, W) in [0, 1]
        side = min(x.shape[-2:])
        x = center_crop(x, [side, side])
        if side != self.output_size:
            smooth = self.resize_filter in ("bicubic", "bilinear") and side > self.output_size
            x = F.interpolate(x, size=(self.output_size, self.output_size), mode=self.resize_filter,
                              antialias=smooth, **({} if self.resize_filter in ("area", "nearest")
                                                   else {"align_corners": False}))
        return (x * 255).round().clamp(0, 255).to(torch.uint8).cpu()           # (B, 3, S, S)
