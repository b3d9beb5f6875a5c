"""What each pool generator trains, and what it leaves behind: the `_target_` of conf/generator/*.yaml.

    recipe = hydra.utils.instantiate(cfg.generator)          # MinimaxRecipe or DDPMRecipe
    module, datamodule = recipe.build(data, cache_dir, seed)  # LightningModule + DataModule
    trainer.fit(module, datamodule, ckpt_path="last")         # conf/trainer, conf/callbacks + recipe.callbacks()
    recipe.export(module, out)                                # diffusers folders that pool=minimax / ddpm load

MinimaxRecipe: a DiT (hub / folder / original .pt / random config) fine-tuned
with DiffFit and the Minimax terms on the real train split, VAE-encoded once
(cached); exported with the DiffFit scales folded in, plus the sampling VAE.
DDPMRecipe: a class-conditional UNet trained from scratch (the CIFAR-10 recipe
of the paper's reference [20]); exported with its scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


__all__ = ["GeneratorRecipe", "MinimaxRecipe", "DDPMRecipe"]

SAMPLE_CLASSES = 10      # classes in train.py's W&B sample grids (the first ones of the dataset)


def _ema(decay, from_start: bool, inv_gamma=None, power: float = 0.75) -> list:
    if decay is None:
        return []
    from sas.generators.ema import EMA
    return [EMA(decay=float(decay), from_start=from_start, warmup_inv_gamma=inv_gamma, warmup_power=power)]


def _sample_grid(recipe, make_sampler) -> list:
    """The W&B sample-grid callback of a recipe (none when sample_every_n_steps is null); make_sampler(module)
    is a function (labels, generators) -> uint8 images over the module's current weights, recipe._shown_ids the
    model labels shown."""
    if not recipe.sample_every_n_steps:
        return []
    from sas.generators.samples import SampleGrid
    return [SampleGrid(make_sampler, recipe._shown_ids, recipe.sample_every_n_steps, recipe.sample_per_class)]


class GeneratorRecipe:
    """What train.py trains (conf/generator builds only subclasses): weights() (the starting weights' ids),
    build(data, cache_dir, seed, ...) -> (LightningModule, DataModule), callbacks(), export(module, folder)."""

    def weights(self) -> dict:
        raise NotImplementedError

    def build(self, data, cache_dir, seed: int, progress: bool = True, data_key: dict | None = None):
        raise NotImplementedError

    def callbacks(self) -> list:
        return []

    def export(self, module, out) -> None:
        raise NotImplementedError


@dataclass
class MinimaxRecipe(GeneratorRecipe):
    kind: str = "minimax"
    pretrained: str | None = "facebook/DiT-XL-2-256"
    revision: str | None = None                  # of each hub repo (None: main)
    checkpoint: str | None = None
    transformer_config: dict | None = None
    vae: str | None = "stabilityai/sd-vae-ft-ema"
    vae_revision: str | None = None
    sample_vae: str | None = "stabilityai/sd-vae-ft-mse"
    sample_vae_revision: str | None = None
    vae_config: dict | None = None
    init_seed: int = 0
    class_ids: str = "imagenet"
    image_size: int = 256
    latent_scale: float = 0.18215
    per_class: int | None = None
    epochs: int = 8
    max_steps: int = 12000
    batch_size: int = 8
    grad_accumulation: int = 1
    grad_clip_norm: float | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    ema_decay: float | None = 0.9999
    lambda_pos: float = 0.002
    lambda_neg: float = 0.008
    memory_size: int = 64
    difffit_blocks: int = 14
    class_dropout_prob: float = 0.1
    minimax: bool = True
    sample_every_n_steps: int | None = 1000   # a W&B grid of samples per class every N steps (null: none)
    sample_per_class: int = 4
    sample_steps: int = 25                    # DiT sampling steps of the grid (respaced; guidance 4)
    _vae: object = field(default=None, init=False, repr=False)
    _shown_ids: list = field(default_factory=list, init=False, repr=False)

    def weights(self) -> dict:
        """What the fine-tuned weights start from: hub ids as the commits they resolve to, files by content."""
        from sas.cache import weights_id
        return {"pretrained": None if self.checkpoint or self.transformer_config is not None
                else weights_id(self.pretrained, self.revision),
                "checkpoint": weights_id(self.checkpoint),
                "vae": None if self.vae_config is not None else weights_id(self.vae, self.vae_revision),
                "sample_vae": None if self.vae_config is not None or not self.sample_vae
                else weights_id(self.sample_vae, self.sample_vae_revision)}

    def build(self, data, cache_dir, seed: int = 0, progress: bool = True, data_key: dict | None = None):
        from sas.cache import config_key, weights_id
        from sas.generators.dit import load_transformer, load_vae
        from sas.generators.latents import LatentDataModule, encode_split
        from sas.generators.minimax import MinimaxModule

        transformer = load_transformer(self.pretrained, self.checkpoint, self.transformer_config, self.init_seed,
                                       revision=self.revision)
        self._vae = load_vae(self.vae, self.vae_config, init_seed=self.init_seed, revision=self.vae_revision)
        from sas.data.classes import model_class_ids
        model_ids = model_class_ids(data.table, self.class_ids, transformer.config.num_embeds_ada_norm,
                                    key="generator.class_ids")
        self._shown_ids = model_ids[:SAMPLE_CLASSES]                  # the classes of the sample grids
        # the real training set, encoded once (cached by dataset, image size and the VAE's resolved weights)
        vae = None if self.vae_config is not None else weights_id(self.vae, self.vae_revision)
        key = config_key({"data": data_key, "vae": vae, "vae_config": self.vae_config,
                          "per_class": self.per_class, "image_size": self.image_size})
        device = "cuda" if torch.cuda.is_available() else "cpu"
        blob = encode_split(data.split("train", per_class=self.per_class), self._vae.to(device).eval(),
                            Path(cache_dir) / "latents" / key, progress=progress)         # streamed when large
        labels = blob["labels"]
        dm = LatentDataModule(blob["moments"], labels, torch.tensor(model_ids)[labels], batch_size=self.batch_size,
                              latent_scale=self.latent_scale, seed=seed)
        module = MinimaxModule(transformer, lr=self.lr, weight_decay=self.weight_decay, lambda_pos=self.lambda_pos,
                               lambda_neg=self.lambda_neg, memory_size=self.memory_size,
                               difffit_blocks=self.difffit_blocks, class_dropout_prob=self.class_dropout_prob,
                               minimax=self.minimax)
        return module, dm

    def callbacks(self) -> list:
        from functools import partial

        from sas.generators.dit import sample_dit

        # EMA from the pretrained weights, as Minimax; sample grids drawn with the DiT being tuned
        return _ema(self.ema_decay, from_start=True) + _sample_grid(
            self, lambda m: partial(sample_dit, m.transformer, self._vae.to(m.device).eval(),
                                    num_inference_steps=self.sample_steps))

    def export(self, module, out) -> None:
        """transformer/ (DiffFit scales folded in) and vae/ (the sampling VAE) in diffusers layout."""
        from sas.generators.difffit import fold_difffit
        from sas.generators.dit import load_vae

        fold_difffit(module.transformer).save_pretrained(Path(out) / "transformer")
        use_train_vae = self.vae_config is not None or not self.sample_vae or self.sample_vae == self.vae
        (self._vae if use_train_vae else load_vae(self.sample_vae, revision=self.sample_vae_revision)
         ).save_pretrained(Path(out) / "vae")


@dataclass
class DDPMRecipe(GeneratorRecipe):
    kind: str = "ddpm"
    image_size: int = 32
    unet: dict = field(default_factory=dict)
    per_class: int | None = None
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"
    epochs: int = 200
    max_steps: int = -1
    batch_size: int = 128
    grad_accumulation: int = 1
    lr: float = 1e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 500
    schedule_horizon: float = 1.0             # the lr schedule spans this many times the optimiser steps
    random_flip: bool = False                 # horizontal flips of the training images
    adam_betas: tuple = (0.95, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 1e-6
    grad_clip_norm: float | None = 1.0
    ema_decay: float | None = 0.9999
    ema_inv_gamma: float | None = 1.0
    ema_power: float = 0.75
    sample_every_n_steps: int | None = 1000   # a W&B grid of samples per class every N steps (null: none)
    sample_per_class: int = 4
    sample_steps: int = 100                   # DDPM sampling steps of the grid
    _shown_ids: list = field(default_factory=list, init=False, repr=False)

    def weights(self) -> dict:
        """Trained from scratch: no starting weights."""
        return {}

    def build(self, data, cache_dir=None, seed: int = 0, progress: bool = True, data_key: dict | None = None):
        from sas.generators.ddpm import DDPMModule, ImageDataModule

        unet_config = {**dict(self.unet), "num_class_embeds": len(data.table)}
        self._shown_ids = list(range(len(data.table)))[:SAMPLE_CLASSES]   # the classes of the sample grids
        images = data.load("train", per_class=self.per_class)
        if images.images.shape[-1] != unet_config["sample_size"]:
            raise ValueError(f"generator.unet.sample_size={unet_config['sample_size']} but the dataset images are "
                             f"{images.images.shape[-1]} px (set dataset.image_size)")
        module = DDPMModule(unet_config, lr=self.lr, weight_decay=self.weight_decay, betas=tuple(self.adam_betas),
                            eps=self.adam_eps, num_train_timesteps=self.num_train_timesteps,
                            beta_schedule=self.beta_schedule, prediction_type=self.prediction_type,
                            warmup_steps=self.warmup_steps, lr_schedule=self.lr_schedule,
                            schedule_horizon=self.schedule_horizon)
        return module, ImageDataModule(images.images, images.labels, self.batch_size, flip=self.random_flip)

    def callbacks(self) -> list:
        from functools import partial

        from sas.generators.ddpm import sample_ddpm

        return _ema(self.ema_decay, from_start=False, inv_gamma=self.ema_inv_gamma, power=self.ema_power) + \
            _sample_grid(self, lambda m: partial(sample_ddpm, m.unet, m.scheduler,
                                                 num_inference_steps=self.sample_steps))

    def export(self, module, out) -> None:
        module.save_pipeline(out)                                # unet/ + scheduler/
