"""Generator fine-tuning / training behind `train.py`: Minimax DiT and class-conditional DDPM.

    folder = train_generator(cfg)     # cfg: conf/train.yaml composed; returns the diffusers folder

The output folder (cfg.output_dir) gets checkpoints/ while training (resumed
by Lightning's fit(ckpt_path="last") from the newer of checkpoints/last.ckpt and
the on_exception.ckpt saved when a run was interrupted) and, when done, the trained weights in
diffusers layout (Minimax: transformer/ with DiffFit folded in, plus vae/;
DDPM: unet/ + scheduler/) and a DONE marker written last. A folder with DONE is
returned at once: trained once, reused by every pool that names it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from sas.io import atomic_torch_save, atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["train_generator", "DONE"]

DONE = "DONE"


def _trainer(cfg, extra_callbacks: list):
    """The Trainer of conf/trainer, with conf/callbacks (checkpoints), the recipe's callbacks (EMA) and the
    logger of conf/train_logger (plus the learning rate when logging)."""
    from hydra.utils import instantiate

    logger = instantiate(cfg.train_logger) if cfg.get("train_logger") is not None else False
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + extra_callbacks
    trainer = instantiate(cfg.trainer, callbacks=callbacks + _lr_monitor(logger), logger=logger)
    if logger:
        logger.log_hyperparams(_plain(cfg))
    return trainer


def _finish_logging(trainer) -> None:
    """Close the W&B run of a finished training, so its curves are written out."""
    if trainer.logger and trainer.is_global_zero:
        trainer.logger.experiment.finish()


def _lr_monitor(logger) -> list:
    from pytorch_lightning.callbacks import LearningRateMonitor
    return [LearningRateMonitor(logging_interval="step")] if logger else []


def _ema(g, from_start: bool):
    """The generator's EMA callback (sas.generators.ema.EMA), or none when ema_decay is null."""
    if g.get("ema_decay") is None:
        return []
    from sas.generators.ema import EMA
    return [EMA(decay=float(g.ema_decay), from_start=from_start, warmup_inv_gamma=g.get("ema_inv_gamma"),
                warmup_power=g.get("ema_power", 0.75))]


def _plain(x):
    from omegaconf import OmegaConf
    return OmegaConf.to_container(x, resolve=True) if OmegaConf.is_config(x) else x


def _load_dit(g):
    from sas.generators.dit import load_transformer, load_vae

    transformer = load_transformer(g.get("pretrained"), g.get("checkpoint"), _plain(g.get("transformer_config")),
                                   g.get("init_seed", 0))
    vae = load_vae(g.get("vae"), _plain(g.get("vae_config")), init_seed=g.get("init_seed", 0))
    return transformer, vae


def _sample_vae(g, train_vae):
    """The VAE saved with the trained DiT for sampling (Minimax: sd-vae-ft-mse; it encodes with ft-ema)."""
    if g.get("vae_config") is not None or not g.get("sample_vae") or g.get("sample_vae") == g.get("vae"):
        return train_vae
    from sas.generators.dit import load_vae
    return load_vae(g.sample_vae)


def _train_minimax(cfg, data, out: Path) -> None:
    from sas.generators.latents import LatentDataModule, encode_moments
    from sas.generators.minimax import MinimaxModule
    from sas.generators.difffit import fold_difffit
    from sas.cache import config_key

    g = cfg.generator
    transformer, vae = _load_dit(g)
    table = data.table
    if g.class_ids == "imagenet":
        if any(i is None for i in table.imagenet_ids):
            raise ValueError(f"dataset {table.name} has no ImageNet ids; set generator.class_ids=label")
        model_ids = list(table.imagenet_ids)
    else:
        model_ids = list(range(len(table)))
    n_model = transformer.config.num_embeds_ada_norm
    bad = [(c, i) for c, i in enumerate(model_ids) if not 0 <= i < n_model]
    if bad:
        raise ValueError(f"class {bad[0][0]} maps to id {bad[0][1]}, outside the model's {n_model} classes")

    # encode the real training set once (cached by dataset, image size and VAE)
    key = config_key({"data": _plain(cfg.dataset), "vae": g.get("vae"), "vae_config": _plain(g.get("vae_config")),
                      "per_class": g.get("per_class"), "image_size": g.image_size})
    cache = Path(cfg.paths.cache_dir) / "latents" / f"{key}.pt"
    if cache.is_file():
        blob = torch.load(cache, weights_only=True)
    else:
        images = data.load("train", per_class=g.get("per_class"))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        moments = encode_moments(images.images, vae.to(device).eval(), progress=cfg.trainer.get("enable_progress_bar", True))
        blob = {"moments": moments, "labels": images.labels}
        atomic_torch_save(blob, cache)
    labels = blob["labels"]
    dm = LatentDataModule(blob["moments"], labels, torch.tensor(model_ids)[labels], batch_size=g.batch_size,
                          latent_scale=g.latent_scale, seed=cfg.seed)
    module = MinimaxModule(transformer, lr=g.lr, weight_decay=g.weight_decay, lambda_pos=g.lambda_pos,
                           lambda_neg=g.lambda_neg, memory_size=g.memory_size, difffit_blocks=g.difffit_blocks,
                           class_dropout_prob=g.class_dropout_prob, minimax=g.get("minimax", True))
    trainer = _trainer(cfg, _ema(g, from_start=True))
    trainer.fit(module, dm, ckpt_path="last")   # last.ckpt or on_exception.ckpt, the newer
    _finish_logging(trainer)
    if trainer.is_global_zero:
        fold_difffit(module.transformer).save_pretrained(out / "transformer")
        _sample_vae(g, vae).save_pretrained(out / "vae")


def _train_ddpm(cfg, data, out: Path) -> None:
    from sas.generators.ddpm import DDPMModule, ImageDataModule

    g = cfg.generator
    unet_config = _plain(g.unet)
    unet_config["num_class_embeds"] = len(data.table)
    images = data.load("train", per_class=g.get("per_class"))
    if images.images.shape[-1] != unet_config["sample_size"]:
        raise ValueError(f"generator.unet.sample_size={unet_config['sample_size']} but the dataset images are "
                         f"{images.images.shape[-1]} px (set dataset.image_size)")
    module = DDPMModule(unet_config, lr=g.lr, weight_decay=g.get("weight_decay", 0.0),
                        betas=tuple(g.get("adam_betas", (0.95, 0.999))), eps=g.get("adam_eps", 1e-8),
                        num_train_timesteps=g.get("num_train_timesteps", 1000),
                        beta_schedule=g.get("beta_schedule", "squaredcos_cap_v2"),
                        prediction_type=g.get("prediction_type", "sample"), warmup_steps=g.get("warmup_steps", 500),
                        lr_schedule=g.get("lr_schedule", "cosine"))
    trainer = _trainer(cfg, _ema(g, from_start=False))
    trainer.fit(module, ImageDataModule(images.images, images.labels, g.batch_size), ckpt_path="last")
    _finish_logging(trainer)
    if trainer.is_global_zero:
        module.save_pipeline(out)


def train_generator(cfg) -> Path:
    """Train (or resume, or reuse) the generator of cfg.generator on cfg.dataset's train split."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    out = Path(cfg.output_dir)
    if (out / DONE).is_file():
        log.info("generator already trained: %s", out)
        return out
    kind = cfg.generator.kind
    if kind not in ("minimax", "ddpm"):
        raise ValueError(f"generator.kind must be minimax or ddpm, got '{kind}'")
    data = instantiate(cfg.dataset)
    if data.layout not in ("digits", "cifar10"):
        data.check()
    out.mkdir(parents=True, exist_ok=True)
    from sas.devices import set_tf32
    set_tf32(cfg.get("tf32", True))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    (_train_minimax if kind == "minimax" else _train_ddpm)(cfg, data, out)
    if pl.utilities.rank_zero_only.rank == 0:
        atomic_write_text(out / "train_config.json", json.dumps(OmegaConf.to_container(cfg, resolve=True), indent=1))
        atomic_write_text(out / DONE, "done\n")
    return out
