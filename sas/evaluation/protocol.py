"""Downstream evaluation: train a classifier from scratch on a distilled set, top-1 on real val.

    from sas.evaluation.protocol import Protocol, evaluate
    result = evaluate(distilled, real_val, {"_target_": "sas.models.resnet_ap.ResNetAP", "depth": 10}, Protocol(), ipc=10)
    result.summary()["best_top1_mean"], result.repeats, result.as_dict()     # sas.artifacts.Evaluation

The IDC protocol (used by Minimax and SAS) with every setting a named value of
`Protocol` (conf/eval/idc.yaml). Each repeat r trains a fresh model with seed
seed + r; the result reports, per repeat, the best top-1 over the evaluation
points (the paper's figure) and the last one (the honest one), then mean and
population std (numpy's default, ddof 0) over repeats. Finished repeats can be
passed back in (`completed`) and are not run again.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Callable

from sas.artifacts import DistilledSet, Evaluation
from sas.data.augment import IMAGENET_MEAN, IMAGENET_STD
from sas.data.images import ImageSet

__all__ = ["Protocol", "EvalContext", "evaluate", "evaluate_set", "run_repeat", "fit", "train_on_real",
           "real_run_settings", "NO_RESULT_FIELDS", "REAL_RUNS"]

NO_RESULT_FIELDS = ("progress",)     # protocol fields that change how a run looks, not what it computes

# A distilled set has a handful of batches per epoch; metrics are logged per evaluation, not per step.
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


@dataclass
class Protocol:
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    epochs: int | None = None                       # None: by IPC from epochs_by_ipc
    # IDC argument.py ipc_epoch: <=1 3000, <=10 2000, <=50 1500, <=200 1000, <=500 500, else 300
    epochs_by_ipc: dict = field(default_factory=lambda: {1: 3000, 10: 2000, 50: 1500, 200: 1000, 500: 500})
    epochs_otherwise: int = 300                     # IPC above every key of epochs_by_ipc
    # ... then x2/3 for exactly 100 classes, rounded down to a multiple of 100 (IDC: 2000 -> 1300)
    epochs_scale_by_classes: dict = field(default_factory=lambda: {100: 2 / 3})
    epochs_scaled_multiple: int = 100
    lr_milestones: tuple = (2 / 3, 5 / 6)           # fractions of the epochs
    lr_gamma: float = 0.2
    evaluations: int = 100                          # evaluate every epochs / evaluations epochs
    eval_from: float = 0.0                          # no evaluation before this fraction of the epochs
    cutmix_beta: float = 1.0
    cutmix_prob: float = 1.0
    image_size: int = 224
    augment: str = "idc"                            # idc (RRC, flip, jitter, lighting) | dsa (IDC's CIFAR) | none
    mean: tuple = IMAGENET_MEAN                     # normalisation (train and val)
    std: tuple = IMAGENET_STD
    dsa_strategy: str = "color_crop_flip_scale_rotate"
    crop_scale: tuple = (0.5, 1.0)                  # RandomResizedCrop scale
    flip: bool = True
    jitter: float = 0.4                             # brightness = contrast = saturation
    lighting: float = 0.1                           # PCA lighting std
    eval_batch_size: int = 500
    repeats: int = 3
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"                      # "bf16-mixed" on GPUs
    channels_last: bool = False
    compile: bool = False                           # torch.compile the model
    tf32: bool = True                               # TF32 matmuls / convolutions in float32 on CUDA
    cudnn_benchmark: bool = True                    # IDC's train.py sets cudnn.benchmark (fixed shapes)
    progress: bool = True                           # one bar per training run (sas.console.training_bar)
    lr_search: tuple | None = None                  # learning rates to try in each repeat, keeping the best run
                                                    # (DD-Ranking's hard-label and random-subset runs); None: lr
    repeat_seeds: tuple | None = None               # the seed of each repeat (DD-Ranking: 0, 1, 42, 1234, 3407);
                                                    # None: seed + repeat
    eval_interval: int | None = None                # epochs between evaluations (DD-Ranking: 20); None: by
                                                    # `evaluations`

    AUGMENTS = ("idc", "dsa", "none")

    def __post_init__(self):
        from omegaconf import OmegaConf
        for f in fields(self):                        # a non-recursive instantiate passes nested configs as-is
            if OmegaConf.is_config(getattr(self, f.name)):
                setattr(self, f.name, OmegaConf.to_container(getattr(self, f.name), resolve=True))
        if isinstance(self.augment, bool):            # older configs: true / false
            self.augment = "idc" if self.augment else "none"
        if self.augment not in self.AUGMENTS:
            raise ValueError(f"eval.augment must be one of {', '.join(self.AUGMENTS)}, got '{self.augment}'")
        for key in ("lr", "batch_size", "evaluations", "repeats", "image_size", "eval_batch_size"):
            if getattr(self, key) <= 0:
                raise ValueError(f"eval.{key} must be > 0, got {getattr(self, key)}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"eval.epochs must be >= 1 or null, got {self.epochs}")
        if not 0 <= self.cutmix_prob <= 1:
            raise ValueError(f"eval.cutmix_prob must be in [0, 1], got {self.cutmix_prob}")
        if self.repeat_seeds is not None:
            self.repeat_seeds = tuple(int(x) for x in self.repeat_seeds)
            if len(self.repeat_seeds) < self.repeats:
                raise ValueError(f"eval.repeat_seeds has {len(self.repeat_seeds)} seeds for {self.repeats} repeats")
        if self.eval_interval is not None and self.eval_interval < 1:
            raise ValueError(f"eval.eval_interval must be >= 1 or null, got {self.eval_interval}")
        if self.lr_search is not None:
            self.lr_search = tuple(float(x) for x in self.lr_search)
            if not self.lr_search or any(not 0 < x < math.inf for x in self.lr_search):
                raise ValueError(f"eval.lr_search must be null or positive learning rates, got {self.lr_search}")

    def epochs_for(self, ipc: int | None, num_classes: int | None = None) -> int:
        """The protocol's epochs: explicit, else IDC's rule by IPC (and by class count, see the fields)."""
        if self.epochs is not None:
            return int(self.epochs)
        if ipc is None:
            raise ValueError("eval.epochs is null, so the IPC is needed to choose the epochs")
        table = {int(k): int(v) for k, v in self.epochs_by_ipc.items()}      # YAML may give string keys
        epochs = next((table[b] for b in sorted(table) if ipc <= b), int(self.epochs_otherwise))
        scale = {int(k): float(v) for k, v in self.epochs_scale_by_classes.items()}.get(num_classes)
        if scale is not None:
            epochs = int(scale * epochs)
            epochs -= epochs % self.epochs_scaled_multiple
        return epochs

    def train_augment(self):
        """The train-time augmentation module: uint8 (B, 3, H, W) + generator -> normalised float."""
        from sas.data.augment import TrainAugment
        from sas.data.dsa import DSAugment

        if self.augment == "idc":
            return TrainAugment(self.image_size, scale=tuple(self.crop_scale), flip=self.flip,
                                brightness=self.jitter, contrast=self.jitter, saturation=self.jitter,
                                lighting=self.lighting, mean=self.mean, std=self.std)
        if self.augment == "dsa":
            return DSAugment(self.dsa_strategy, mean=self.mean, std=self.std)
        return None

    def eval_every(self, epochs: int) -> int:
        return self.eval_interval or max(1, epochs // self.evaluations)

    def replaced(self, **changes) -> "Protocol":
        """A copy with these settings changed that keeps what was loaded (the soft-label teacher)."""
        from dataclasses import replace
        new = replace(self, **changes)
        for f in fields(self):
            if not f.init:
                setattr(new, f.name, getattr(self, f.name))
        return new

    def repeat_seed(self, repeat: int) -> int:
        return self.repeat_seeds[repeat] if self.repeat_seeds else self.seed + repeat

    def ddranking_hard(self, lr_search, mix: bool = False) -> "Protocol":
        """DD-Ranking's hard-label runs of this protocol (metrics/soft_label.py, _compute_hard_label_metrics):
        the same optimiser, schedule, epochs and per-image augmentation, cross-entropy on the labels, the batch
        not mixed unless `mix` (use_aug_for_hard), the best of a learning-rate search."""
        return self.replaced(cutmix_prob=self.cutmix_prob if mix else 0.0, lr_search=tuple(lr_search))

    def config(self) -> dict:
        """The settings (JSON-ready), without loaded state such as a teacher network."""
        import copy
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}

    def settings(self) -> dict:
        """config() without the fields that change no result (NO_RESULT_FIELDS): what cache keys hold."""
        return {k: v for k, v in self.config().items() if k not in NO_RESULT_FIELDS}

    def hard_protocol(self) -> "Protocol":
        """The hard-label protocol that goes with this one (DD-Ranking's HLR): itself."""
        return self

    def batch_size_for(self, ipc: int | None, num_classes: int) -> int:
        return self.batch_size

    def check(self, table) -> None:
        """Check what the protocol loads besides the distilled set against the dataset's classes, before any
        pool work (the soft-label teacher's weights); ValueError naming the setting."""

    def prepare(self, context: "EvalContext") -> None:
        """Load or train what the protocol needs besides the distilled set (the soft-label teacher)."""

    def build_module(self, net, epochs: int, seed: int, metric_prefix: str = ""):
        """The LightningModule that trains `net` on the distilled set under this protocol."""
        from sas.evaluation.classifier import Classifier
        return Classifier(net, epochs=epochs, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                          lr_milestones=tuple(self.lr_milestones), lr_gamma=self.lr_gamma,
                          cutmix_beta=self.cutmix_beta, cutmix_prob=self.cutmix_prob, seed=seed,
                          channels_last=self.channels_last, metric_prefix=metric_prefix,
                          eval_from_epoch=int(self.eval_from * epochs))


@dataclass
class EvalContext:
    """What a protocol may read besides the distilled set: the real splits (loaded on first call) and the
    shared cache (a trained teacher, full-data reference runs)."""

    real_train: Callable | None = None
    real_val: Callable | None = None
    cache_dir: str | None = None
    data_key: dict = field(default_factory=dict)       # identifies the real data (dataset config)


def run_repeat(train: ImageSet, val: ImageSet, model: dict, protocol: Protocol, epochs: int, repeat: int,
               logger=None, ipc: int | None = None, metric_prefix: str = "") -> dict:
    """One training run from scratch -> {repeat, seed, best_top1, last_top1, best_epoch, curve}. With
    protocol.lr_search, one run per learning rate from the same seed; the best (best top-1, ties to the first
    rate) is the repeat's result, every rate's figures under "lr_search" (as DD-Ranking's hyper_param_search)."""
    seed = protocol.repeat_seed(repeat)
    rates = protocol.lr_search or (None,)
    runs = []
    for lr in rates:
        p = protocol if lr is None else protocol.replaced(lr=lr, lr_search=None)
        tag = f"{metric_prefix}repeat{repeat}/" + ("" if lr is None else f"lr{lr:g}/")
        _, module = fit(train, val, model, p, epochs, seed, logger, p.batch_size_for(ipc, train.num_classes),
                        metric_prefix=tag)
        runs.append({"repeat": repeat, "seed": seed, "best_top1": module.best_top1, "last_top1": module.last_top1,
                     "best_epoch": module.best_epoch, "curve": [list(c) for c in module.curve],
                     **({} if lr is None else {"lr": lr})})
    best = max(runs, key=lambda r: r["best_top1"])              # max keeps the first of equal values
    if protocol.lr_search:
        best = {**best, "lr_search": [{k: r[k] for k in ("lr", "best_top1", "last_top1")} for r in runs]}
    return best


def fit(train, val, model: dict, protocol: Protocol, epochs: int, seed: int, logger=None,
        batch_size: int | None = None, metric_prefix: str = ""):
    """Train a fresh `model` on `train` under the protocol, evaluating on `val` -> (net, module)."""
    import pytorch_lightning as pl
    import torch

    from sas.devices import set_tf32
    from sas.evaluation.datamodule import ResidentDataModule
    from sas.models import build_model
    from sas.trainer import lightning_trainer

    pl.seed_everything(seed, workers=True, verbose=False)
    set_tf32(protocol.tf32)
    net = build_model(model, num_classes=train.num_classes, image_size=protocol.image_size)
    module = protocol.build_module(torch.compile(net) if protocol.compile else net, epochs, seed, metric_prefix)
    dm = ResidentDataModule(train, val, protocol.train_augment(), batch_size or protocol.batch_size,
                            protocol.eval_batch_size, seed, mean=protocol.mean, std=protocol.std,
                            image_size=protocol.image_size)
    trainer = lightning_trainer(
        max_epochs=epochs, check_val_every_n_epoch=protocol.eval_every(epochs),
        accelerator=protocol.accelerator, devices=protocol.devices, strategy=protocol.strategy,
        precision=protocol.precision, logger=logger, enable_checkpointing=False, num_sanity_val_steps=0,
        enable_progress_bar=False, progress=f"train {metric_prefix.rstrip('/') or 'model'}" if protocol.progress
        else None, log_every_n_steps=1 << 30, deterministic=False, benchmark=protocol.cudnn_benchmark)
    trainer.fit(module, dm)
    if not module.curve:         # ddp_spawn trained copies in other processes: the curve comes back as metrics
        module.curve = sorted((int(k.split("/")[1]), float(v)) for k, v in trainer.callback_metrics.items()
                              if k.startswith("curve/"))
    if not module.curve or module.curve[-1][0] != epochs:  # make sure the last epoch is evaluated
        trainer.validate(module, dm, verbose=False)
        if not module.curve or module.curve[-1][0] != epochs:   # ddp_spawn again: the point came back as a metric
            module.curve.append((epochs, float(trainer.callback_metrics[f"curve/{epochs}"])))
    return net, module


def evaluate(train: ImageSet, val: ImageSet, model: dict, protocol: Protocol, ipc: int | None = None,
             logger=None, completed: list[dict] | None = None,
             on_repeat: Callable[[dict], None] | None = None, context: EvalContext | None = None,
             which: list[int] | None = None, metric_prefix: str = "") -> Evaluation:
    """Run protocol.repeats trainings (or the repeats `which` names; skipping those in `completed`) -> Evaluation.
    metric_prefix keys the logged curves by what was trained."""
    if len(train) == 0:
        raise ValueError(f"empty training set: {train.source}")
    epochs = protocol.epochs_for(ipc, train.num_classes)
    done = {int(r["repeat"]): r for r in (completed or [])}
    which = list(range(protocol.repeats)) if which is None else list(which)
    if any(r not in done for r in which):
        protocol.prepare(context or EvalContext(real_val=lambda: val))
    repeats = []
    for r in which:
        rec = done.get(r) or run_repeat(train, val, model, protocol, epochs, r, logger, ipc, metric_prefix)
        if r not in done and on_repeat is not None:
            on_repeat(rec)
        repeats.append(rec)
    return Evaluation(repeats=repeats, model=dict(model), protocol=protocol.config(), epochs=epochs,
                      eval_every=protocol.eval_every(epochs), train_images=len(train), train_source=train.source,
                      val_images=len(val), val_source=val.source)


def evaluate_set(distilled: DistilledSet, table, context: EvalContext, model: dict, protocol: Protocol,
                 ipc: int | None, logger=None, which: list[int] | None = None, metric_prefix: str = "") -> Evaluation:
    """The evaluate stage: train on a distilled set on disk under `protocol`. Finished repeats are kept in
    distilled.repeats_log (appended a line at a time, keyed by the model, the protocol's settings and the set's
    manifest), so a killed run trains only what it lacks."""
    import json

    from sas.cache import config_key
    from sas.data.distilled import read_distilled
    from sas.io import append_line, read_jsonl

    train = read_distilled(distilled.path, table, protocol.image_size)
    key = config_key({"model": model, "protocol": [type(protocol).__name__, protocol.settings()],
                      "manifest": distilled.manifest.read_text()})
    log = distilled.repeats_log
    done = [r for r in read_jsonl(log) if r.get("key") == key] if log else []    # a partial last line is dropped

    def record(rec):
        if log:
            append_line(log, json.dumps({**rec, "key": key}))

    return evaluate(train, context.real_val(), model, protocol, ipc=ipc, logger=logger, completed=done,
                    on_repeat=record, context=context, which=which, metric_prefix=metric_prefix)


REAL_RUNS = "real_runs"          # <cache>/real_runs: models trained on a whole real train split


def real_run_settings(model: dict, protocol: Protocol, context: EvalContext) -> dict:
    """What decides a model trained on the whole real train split (its cache key, as JSON values): the model
    config, the protocol's settings and the data."""
    import json
    return json.loads(json.dumps({"model": model, "protocol": protocol.settings(), "data": context.data_key},
                                 default=str))


def train_on_real(model: dict, protocol: Protocol, context: EvalContext) -> tuple:
    """A model trained with hard labels on the whole real train split, evaluated on real val; cached by model,
    protocol and data (<cache>/real_runs/<key>.pt + .json) -> (net, {"best_top1", "last_top1", ...}).
    The one real-data training path: the soft-label teacher, DD-Ranking's acc(real, hard) and the domain encoder
    are such runs (one file when two coincide)."""
    import json
    from pathlib import Path

    from sas.cache import config_key
    from sas.io import atomic_write_text, load_checked, save_checked
    from sas.models import build_model

    if context.real_train is None or context.cache_dir is None:
        raise ValueError("training a model on the real data needs the real train split and a cache folder")
    what = real_run_settings(model, protocol, context)
    path = Path(context.cache_dir) / REAL_RUNS / f"{config_key(what)}.pt"
    real_val = context.real_val()
    state = load_checked(path, map_location="cpu") if path.with_suffix(".json").is_file() else None
    if state is not None:                                             # cached: the train split is not read
        net = build_model(model, num_classes=real_val.num_classes, image_size=protocol.image_size)
        net.load_state_dict(state)
        return net, json.loads(path.with_suffix(".json").read_text())["result"]
    real_train = context.real_train()
    epochs = protocol.epochs or protocol.epochs_otherwise          # a full real split: no IPC rule
    net, module = fit(real_train, real_val, model, protocol, epochs, protocol.seed)
    net = getattr(net, "_orig_mod", net).cpu()
    result = {"best_top1": module.best_top1, "last_top1": module.last_top1, "epochs": epochs,
              "train_images": len(real_train)}
    save_checked(net.state_dict(), path)                              # the weights and their record, then the .json
    atomic_write_text(path.with_suffix(".json"), json.dumps({"settings": what, "result": result}, indent=1,
                                                            default=str))
    return net, result
