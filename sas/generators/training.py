"""Generator training behind `train.py`: compose -> instantiate -> fit(ckpt_path="last") -> export.

    folder = train_generator(cfg)     # cfg: conf/train.yaml composed; returns the diffusers folder

cfg.generator is a recipe (`_target_`: sas.generators.recipes.MinimaxRecipe or
DDPMRecipe) that builds the LightningModule and DataModule and exports the
weights; cfg.trainer, cfg.callbacks and cfg.train_logger are the Trainer, its
checkpoint callbacks and its W&B logger, all by `_target_`. The output folder
(cfg.output_dir) gets checkpoints/ while training (resumed by Lightning's
fit(ckpt_path="last") from the newer of last.ckpt and the on_exception.ckpt
saved when a run was interrupted) and, when done, the trained weights in
diffusers layout (Minimax: transformer/ with DiffFit folded in, plus vae/;
DDPM: unet/ + scheduler/) and a DONE marker written last. A folder with DONE is
returned at once: trained once, reused by every pool that names it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sas.io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["train_generator", "build_trainer", "DONE"]

RUN_RECORD = "wandb_run.json"      # the W&B run that trained the weights in this folder
TRAIN_CONFIG = "train_config.json"  # the config it was trained with, and the weights it started from
DONE = "DONE"


def _plain(x):
    from omegaconf import OmegaConf
    return OmegaConf.to_container(x, resolve=True) if OmegaConf.is_config(x) else x


def _recorded(out: Path) -> dict:
    try:
        return json.loads((out / TRAIN_CONFIG).read_text())
    except (OSError, ValueError):
        return {}


def build_trainer(cfg, extra_callbacks: list):
    """The Trainer of conf/trainer, with conf/callbacks (checkpoints), the recipe's callbacks (EMA) and the
    logger of conf/train_logger (plus a learning-rate monitor when logging)."""
    from hydra.utils import instantiate
    from pytorch_lightning.callbacks import LearningRateMonitor

    logger = instantiate(cfg.train_logger) if cfg.get("train_logger") is not None else False
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + list(extra_callbacks)
    if logger:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    quiet_bar = not cfg.trainer.get("enable_progress_bar", True) and cfg.get("progress", True)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger,          # sas.trainer.lightning_trainer
                          progress=f"train {cfg.generator.kind}" if quiet_bar else None, progress_unit="step")
    if logger:
        logger.log_hyperparams(_plain(cfg))
    return trainer


def set_aside_damaged_checkpoints(folder: Path) -> list[Path]:
    """Lightning checkpoints (torch zip files) that are cut short or corrupt are renamed <name>.damaged with a
    warning naming them, so fit(ckpt_path="last") resumes from an intact one or starts afresh instead of
    failing on every rerun. Every member's CRC is checked (the file is read once)."""
    import zipfile
    bad = []
    for ckpt in sorted(Path(folder).glob("*.ckpt")) if Path(folder).is_dir() else []:
        try:
            with zipfile.ZipFile(ckpt) as z:
                broken = z.testzip()
            why = None if broken is None else f"member {broken} fails its CRC"
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            why = str(err) or type(err).__name__
        if why is not None:
            log.warning("generator checkpoint %s is damaged (%s): set aside as %s.damaged; training resumes from "
                        "another checkpoint or starts again", ckpt, why, ckpt.name)
            ckpt.replace(ckpt.with_name(ckpt.name + ".damaged"))
            bad.append(ckpt)
    return bad


def train_generator(cfg) -> Path:
    """Train (or resume, or reuse) the generator of cfg.generator on cfg.dataset's train split."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from sas.devices import set_tf32

    from sas.targets import check_targets
    for group in ("generator", "dataset", "trainer", "train_logger"):    # each group builds only its own kind
        if cfg.get(group) is not None:
            check_targets(cfg[group], group)
    for name, node in (cfg.get("callbacks") or {}).items():
        check_targets(node, "callbacks", f"callbacks.{name}")
    out = Path(cfg.output_dir)
    recipe = instantiate(cfg.generator, _convert_="all")
    start = json.loads(json.dumps(recipe.weights()))     # the starting weights, hub ids as their commits
    if (out / DONE).is_file():
        recorded = _recorded(out).get("start_weights", start)
        if recorded != start:
            raise ValueError(f"{out} holds a generator trained from other weights ({recorded}, now {start}): move "
                             "it away, or give output_dir=<another folder>")
        log.info("generator already trained: %s", out)
        return out
    data = instantiate(cfg.dataset)
    if data.layout not in ("digits", "cifar10"):
        data.check()
    out.mkdir(parents=True, exist_ok=True)
    set_tf32(cfg.get("tf32", True))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module, datamodule = recipe.build(data, cfg.paths.cache_dir, cfg.seed,
                                      progress=cfg.trainer.get("enable_progress_bar", True),
                                      data_key=_plain(cfg.dataset))
    trainer = build_trainer(cfg, recipe.callbacks())
    set_aside_damaged_checkpoints(out / "checkpoints")
    trainer.fit(module, datamodule, ckpt_path="last")      # last.ckpt or on_exception.ckpt, the newer
    if trainer.logger and trainer.is_global_zero:
        run = trainer.logger.experiment                        # the distill runs that use these weights link to it
        atomic_write_text(out / RUN_RECORD, json.dumps({"id": run.id, "project": run.project, "name": run.name,
                                                        "url": None if run.offline else run.url}))
        run.finish()                                           # the W&B curves are written out
    if trainer.is_global_zero:
        recipe.export(module, out)
        atomic_write_text(out / TRAIN_CONFIG, json.dumps({**_plain(cfg), "start_weights": start}, indent=1))
        atomic_write_text(out / DONE, "done\n")
    return out
