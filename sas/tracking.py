"""W&B logging of a distill job: one run per Hydra job, also in multirun.

    tracker = plan.tracker(config, out_dir, run_id, group_by, name)   # conf/logger: online | offline | disabled
                                             # (online falls back to offline, with a warning, when W&B is
                                             # unreachable or no key is set; a resumed job keeps its run id)
    tracker.lightning_logger()               # hands the run to Lightning for every training's curves
    tracker.log_selection(...); tracker.log_results(...); tracker.finish()

Logged: the resolved config (plus flat keys dataset / sampler / ipc / pool_mult
/ model / pool for grouping), group = the experiment name, per-repeat curves
(<sampler>/repeat{r}/val/top1 against <sampler>/repeat{r}/epoch, and the same under
<sampler>/ddranking_*/ for DD-Ranking's runs: one curve per training), summary metrics, a grid of the
selected images captioned with their margin scores (paper Fig. 4), and the
manifest as a table.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["Tracker", "online_or_offline", "wandb_logger"]

MAX_LOGGED_IMAGES = 200      # selected images per sampler in the W&B table (IPC x classes beyond it are cut)
THUMBNAIL = 128              # side of the logged images: one size for a grid of any pool (real pools mix sizes)


def _thumbnail(path):
    """(THUMBNAIL, THUMBNAIL, 3) uint8 of an image file: centre-cropped square, resized (W&B grids need one size)."""
    import numpy as np
    from PIL import Image, ImageOps

    from sas.data.images import open_rgb
    return np.asarray(ImageOps.fit(open_rgb(path), (THUMBNAIL, THUMBNAIL), Image.Resampling.BICUBIC))


def online_or_offline(timeout: float = 3.0) -> str:
    """"online" when an API key is set and the W&B server answers a TCP connect within `timeout` seconds,
    else "offline" with a warning saying how to sync later (no 100-second wait inside wandb.init)."""
    import logging
    import os
    import socket
    from urllib.parse import urlparse

    warn = logging.getLogger(__name__).warning
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    if not (os.environ.get("WANDB_API_KEY") or _netrc_has(base)):
        warn("W&B: no API key (WANDB_API_KEY or `wandb login`): logging offline; `wandb sync <run>/wandb/offline-run-*`"
             " uploads it later")
        return "offline"
    url = urlparse(base)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return "online"
    except OSError as err:
        warn("W&B: %s unreachable (%s): logging offline; `wandb sync <run>/wandb/offline-run-*` uploads it later",
             base, err)
        return "offline"


def wandb_logger(mode: str = "disabled", project: str = "sas", connect_timeout: float = 3.0, save_dir=None,
                 name: str | None = None, **kwargs):
    """A Lightning WandbLogger for train.py (conf/train_logger), or False when mode is disabled; online falls
    back to offline with a warning when W&B is unreachable or no key is set."""
    if mode == "disabled":
        return False
    import wandb
    from pytorch_lightning.loggers import WandbLogger
    if mode == "online":
        mode = online_or_offline(float(connect_timeout))
    logger = WandbLogger(project=project, mode=mode, save_dir=None if save_dir is None else str(save_dir), name=name,
                         job_type="train", settings=wandb.Settings(silent=True), **kwargs)   # the job prints its own
    logger._wandb_init.pop("anonymous", None)     # Lightning always passes it; wandb warns that it has no effect
    return logger


def _netrc_has(base: str) -> bool:
    import netrc
    from urllib.parse import urlparse
    try:
        return netrc.netrc().authenticators(urlparse(base).hostname or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


class Tracker:
    """conf/logger builds it by _target_ (partial): Tracker(mode=..., project=...)(config, out, run_id, group_by,
    name, job_name). config: the run's resolved config (plain data); run_id: the job folder's W&B id, or a
    function that makes it (called only when logging); group_by: flat keys W&B groups runs by."""

    def __init__(self, config: dict, out: Path, run_id=None, group_by: dict | None = None, name: str = "default",
                 job_name: str | None = None, mode: str = "disabled", project: str = "sas", entity: str | None = None,
                 tags=(), connect_timeout: float = 3.0):
        self.run = None
        if mode == "disabled":
            return
        import wandb

        if mode == "online":
            mode = online_or_offline(float(connect_timeout))
        run_id = run_id() if callable(run_id) else run_id        # one job = one W&B run, across resumes
        self.run = wandb.init(project=project, entity=entity, group=name, name=job_name or Path(out).name,
                              job_type="distill", config={**config, "group_by": dict(group_by or {})},
                              dir=str(out), mode=mode, reinit="finish_previous", id=run_id, resume="allow",
                              settings=wandb.Settings(silent=True),         # the job prints its own results
                              tags=list(tags or []))

    def lightning_logger(self):
        """A Lightning logger into this run. Every training logs its curve under its own prefix (sampler, what
        was trained, repeat: "sas/repeat0/", "sas/ddranking_hard/repeat1/lr0.01/"), each against its own
        "<prefix>epoch" axis, defined the first time the prefix is logged."""
        if self.run is None:
            return None
        from pytorch_lightning.loggers import WandbLogger

        run, defined = self.run, set()

        class RunLogger(WandbLogger):  # the run's config is already complete: keep repeat hparams out of it
            def log_hyperparams(self, params, *args, **kwargs):
                pass

            def log_metrics(self, metrics, step=None):
                for key in metrics:
                    if key.endswith("epoch") and key[:-5] not in defined:
                        prefix = key[:-5]
                        run.define_metric(f"{prefix}epoch")
                        run.define_metric(f"{prefix}*", step_metric=f"{prefix}epoch")
                        defined.add(prefix)
                super().log_metrics(metrics, step)

        return RunLogger(experiment=self.run)

    def log_selection(self, selection) -> None:
        """A PoolSelection (sas.artifacts): the selected images captioned with their margins, and the pool's
        per-image record as a table."""
        if self.run is None:
            return
        import wandb
        pool, rec, name = selection.encoded.pool, selection.record, selection.name
        files, labels, table = pool.files, pool.labels, pool.classes
        margin = rec.get("margin")
        images = [wandb.Image(_thumbnail(files[i]), caption=f"{table.names[labels[i]]}"
                              + (f" margin {margin[i]:.3f}" if margin else ""))
                  for i in selection.indices[:MAX_LOGGED_IMAGES]]
        columns = ["pool_index", "class", "file", *rec.keys()]
        rows = [[i, table.names[labels[i]], files[i], *(rec[k][i] for k in rec)] for i in range(len(files))]
        self.run.log({f"{name}/selected": images, f"{name}/manifest": wandb.Table(columns=columns, data=rows)})

    def link_generator(self, pool) -> None:
        """Record the train.py W&B run of the generator the pool was drawn with (its folder's wandb_run.json)
        in this run's config, as generator_run."""
        if self.run is None:
            return
        import json
        from pathlib import Path

        from sas.generators.training import RUN_RECORD
        model = getattr(getattr(pool, "source", pool), "model", None)
        record = Path(str(model)) / RUN_RECORD if model else None
        if record is not None and record.is_file():
            self.run.config.update({"generator_run": json.loads(record.read_text())}, allow_val_change=True)

    def log_pictures(self, name: str, paths: dict) -> None:
        """The selection's PNGs (sas.report.pictures) as W&B images under <sampler>/figures/<kind>."""
        if self.run is None or not paths:
            return
        import wandb
        self.run.log({f"{name}/figures/{k}": wandb.Image(str(p)) for k, p in paths.items()})

    def log_results(self, name: str, result: dict, scores: dict | None = None) -> None:
        if self.run is None:
            return
        keys = ("best_top1_mean", "best_top1_std", "last_top1_mean", "last_top1_std")
        prefix = "" if name == "main" else f"{name}/"
        self.run.summary.update({f"{prefix}{k}": result[k] for k in keys})
        if scores:                                     # DD-Ranking: hlr / ior / ior_pool / ddrs / lrs
            from sas.evaluation.ddranking import SCORES
            self.run.summary.update({f"{prefix}ddranking/{k}_{s}": scores[f"{k}_{s}"]
                                     for k in SCORES for s in ("mean", "std")
                                     if f"{k}_{s}" in scores})

    def log_quality(self, name: str, quality: dict | None, costs: dict | None = None) -> None:
        """The overall set quality (<name>/quality/<metric>) and stage costs (<name>/cost/<stage>/<key>) into
        the run's summary; name: a sampler, or "pool"."""
        if self.run is None:
            return
        flat = {f"{name}/quality/{k}": v for k, v in ((quality or {}).get("overall") or {}).items() if v is not None}
        flat.update({f"{name}/cost/{stage}/{k}": v for stage, c in (costs or {}).items() for k, v in c.items()
                     if v is not None})
        self.run.summary.update(flat)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
