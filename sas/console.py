"""A quiet console for the command-line jobs: progress bars and results, not library noise.

    from sas.console import quiet
    quiet()        # distill.py and train.py call it first
    print(results_table(results, scores))     # the distill job's closing table

Lightning's info lines (devices found, tips, "fit stopped", estimating batches)
and a few warnings that say nothing about the run are dropped; warnings and
errors from every library, and the jobs' own messages, stay. SAS_VERBOSE=1
keeps everything.
"""

from __future__ import annotations

import logging
import os
import warnings

__all__ = ["quiet", "training_bar", "results_table"]

_NOISE = (
    ".*treespec.*",                                             # a deprecation inside Lightning's own code
    r'.*ckpt_path="last"\) is set, but there is no last checkpoint.*',   # a first run has none: expected
    ".*does not have many workers.*",                           # our loaders yield indices: by design
    ".*smaller than the logging interval.*",                    # tiny distilled sets: few steps per epoch
    ".*You're using the WeightAveraging callback.*",
    r".*module\(s\) in eval mode at the start of training.*",     # the soft-label teacher: frozen by design
    ".*local_dir_use_symlinks.*",                               # diffusers passes a retired hub argument
)
# open_clip's log line for a config without weights: our tiny test encoders (pretrained: null) on purpose
_LOG_NOISE = ("No pretrained weights loaded for model",)


def _not_noise(record: logging.LogRecord) -> bool:
    return not any(str(record.msg).startswith(p) for p in _LOG_NOISE)


def quiet() -> None:
    if os.environ.get("SAS_VERBOSE"):
        return
    # Lightning sets its package loggers to INFO when imported, so the module loggers that speak are set
    # too; library INFO on the root logger (open_clip's model-loading lines) goes, `sas` keeps its own
    for name in ("pytorch_lightning", "lightning_fabric", "pytorch_lightning.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "pytorch_lightning.accelerators.cuda",
                 "pytorch_lightning.callbacks.model_summary", "lightning_fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    if _not_noise not in root.filters:
        root.addFilter(_not_noise)
    logging.getLogger("sas").setLevel(logging.INFO)
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)


def training_bar(desc: str, unit: str = "epoch"):
    """A Lightning callback showing one tqdm bar for a whole fit: epochs (or optimizer steps) done of all, the
    rate, the ETA and, when the module keeps a curve, its last top-1; gone when done. Used where Lightning's
    own bar (a line per epoch off a terminal) is switched off: evaluation runs and generators trained in a run."""
    import pytorch_lightning as pl
    from tqdm.auto import tqdm

    if unit not in ("epoch", "step"):
        raise ValueError(f"training_bar unit must be epoch or step, got '{unit}'")

    class _Bar(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            total = trainer.max_epochs if unit == "epoch" else int(trainer.estimated_stepping_batches)
            self.done = trainer.current_epoch if unit == "epoch" else trainer.global_step
            self.bar = tqdm(total=total, initial=self.done, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                            disable=not trainer.is_global_zero)

        def _advance(self, pl_module, now: int) -> None:
            curve = getattr(pl_module, "curve", None)
            if curve:
                self.bar.set_postfix(top1=f"{100 * curve[-1][1]:.1f}", refresh=False)
            if now > self.done:
                self.bar.update(now - self.done)
                self.done = now

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if unit == "step":
                self._advance(pl_module, trainer.global_step)

        def on_train_epoch_end(self, trainer, pl_module):
            if unit == "epoch":
                self._advance(pl_module, trainer.current_epoch + 1)

        def on_train_end(self, trainer, pl_module):
            self.bar.close()

    return _Bar()


def results_table(results: dict, scores: dict | None = None) -> str:
    """Best / last top-1 per sampler (mean +- std over repeats, %), and DD-Ranking's HLR / IOR / IOR_pool
    (percentage points), DDRS (on fractions) and LRS (the package's, on percentages) when given.
    results: sampler -> summary (best_top1_mean, ...); scores: sampler -> sas.evaluation.ddranking scores."""
    scores = scores or {}
    head = f"{'sampler':<16} {'best top-1 (%)':>16} {'last top-1 (%)':>16}"
    head += (f" {'HLR (pp)':>14} {'IOR (pp)':>14} {'IOR pool (pp)':>14} {'DDRS':>14} {'LRS (package)':>16}"
             if scores else "")
    lines = [head]
    for name, r in results.items():
        line = (f"{name:<16} {100 * r['best_top1_mean']:>9.1f} +- {100 * r['best_top1_std']:<4.1f}"
                f" {100 * r['last_top1_mean']:>9.1f} +- {100 * r['last_top1_std']:<4.1f}")
        s = scores.get(name)
        if s:
            line += "".join(f" {100 * s[f'{k}_mean']:>7.1f} +- {100 * s[f'{k}_std']:<4.1f}"
                            for k in ("hlr", "ior", "ior_pool"))
            line += f" {s['ddrs_mean']:>7.3f} +- {s['ddrs_std']:<5.3f} {s['lrs_mean']:>8.3f} +- {s['lrs_std']:<5.3f}"
        lines.append(line)
    return "\n".join(lines)
