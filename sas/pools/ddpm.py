"""Class-conditional pixel-space DDPM pool source (diffusers UNet2DModel with class embeddings).

    src = DDPMSource(model="path/to/trained")       # a folder with unet/ and scheduler/ (train.py output)
    src = DDPMSource(model="user/cifar10-ddpm")     # or a released diffusers checkpoint by hub id (unet/, scheduler/)
    images = src.sample([0, 1], [g0, g1])            # (2, 3, S, S) uint8

Ancestral DDPM sampling (sas.generators.ddpm.sample_ddpm) over `num_inference_steps`
of the training schedule (all 1,000 by default) with the scheduler saved beside
the weights (its schedule and prediction type: epsilon or sample); class label =
the dataset label. Random init from `unet_config` for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import torch

from sas.data.classes import ClassTable
from sas.cache import is_local_path, weights_id
from sas.hub import load_pretrained
from sas.pools.base import GeneratedPool

__all__ = ["DDPMSource"]


@dataclass
class DDPMSource(GeneratedPool):
    model: str | None = None               # folder with unet/ and scheduler/ (diffusers layout), or a hub id
    revision: str | None = None            # of the hub repo (None: main)
    unet_config: dict | None = None        # random init instead (tests)
    init_seed: int = 0
    num_inference_steps: int = 1000
    device: str = "auto"
    dtype: str = "float32"
    batch: int | str = "auto"
    _loaded: tuple = field(default=None, init=False, repr=False)

    def __post_init__(self):
        # model may stay None here when the pipeline trains it first (pool.train); _load checks again
        if self.model is not None and is_local_path(str(self.model)) and not (Path(self.model) / "unet").is_dir():
            raise FileNotFoundError(f"ddpm pool.model has no unet/ folder: {self.model} (train one with train.py,"
                                    " or give a diffusers hub id)")

    KIND: ClassVar[str] = "ddpm"
    WEIGHT_FIELDS: ClassVar[tuple] = ("model", "revision", "unet_config", "init_seed")

    def weights_key(self) -> dict:
        return ({"model": weights_id(self.model, self.revision)} if self.model else
                {"unet_config": self.unet_config, "init_seed": self.init_seed})

    def _load(self):
        if self._loaded is None:
            from diffusers import DDPMScheduler, UNet2DModel
            if self.model is None and self.unet_config is None:
                raise ValueError("ddpm pool needs model (a trained folder), unet_config, or pool.train")
            dev, dt = self.device_dtype()
            torch.manual_seed(self.init_seed)
            if self.model:                            # hub id (its commit) or folder: unet/ + its scheduler/
                unet = load_pretrained(UNet2DModel, self.model, self.revision, subfolder="unet")
                no_scheduler = is_local_path(str(self.model)) and not (Path(self.model) / "scheduler").is_dir()
                sched = DDPMScheduler() if no_scheduler else load_pretrained(DDPMScheduler, self.model, self.revision,
                                                                             subfolder="scheduler")
            else:
                unet, sched = UNet2DModel(**self.unet_config), DDPMScheduler()
            unet = unet.to(dev).eval()
            if dt != torch.float32:
                unet = unet.to(dtype=dt)
            self._loaded = (unet, sched, dev, dt)
        return self._loaded

    def check(self, table: ClassTable) -> None:
        unet = self._load()[0]
        n = unet.config.num_class_embeds
        if n is None:
            raise ValueError("ddpm pool model is not class-conditional (num_class_embeds is None)")
        if len(table) > n:
            raise ValueError(f"dataset {table.name} has {len(table)} classes but the DDPM knows {n} (0..{n - 1})")

    def batch_size(self) -> int:
        if self.batch != "auto":
            return int(self.batch)
        return 256 if self._load()[2].type == "cuda" else 16

    def sample(self, labels: list[int], generators: list[torch.Generator]) -> torch.Tensor:
        from sas.generators.ddpm import sample_ddpm
        unet, sched, _, dt = self._load()
        return sample_ddpm(unet, sched, labels, generators, self.num_inference_steps, dt)
