"""The one place a Lightning Trainer is built: evaluation trainings (sas.evaluation.protocol.fit, which the
domain encoder and the soft-label teacher also train through) and generator training (conf/trainer).

    trainer = lightning_trainer(max_epochs=20, accelerator="cpu", progress="train sas/repeat0")
    trainer = instantiate(cfg.trainer, callbacks=[...], logger=logger)   # conf/trainer: _target_ is this

progress: a label shows one bar for the whole fit (sas.console.training_bar) in place of Lightning's
per-epoch bar; None keeps whatever enable_progress_bar says. Every other keyword is pytorch_lightning.Trainer's.
"""

from __future__ import annotations

__all__ = ["lightning_trainer"]


def lightning_trainer(progress: str | None = None, progress_unit: str = "epoch", callbacks=(), logger=False,
                      **settings):
    import pytorch_lightning as pl

    callbacks = list(callbacks or ())
    settings.setdefault("enable_model_summary", False)      # the run prints its own settings
    if progress:
        from sas.console import training_bar
        callbacks.append(training_bar(progress, unit=progress_unit))
        settings["enable_progress_bar"] = False
    return pl.Trainer(callbacks=callbacks, logger=logger if logger is not None else False, **settings)
