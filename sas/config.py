"""A composed distill config, checked and read once, before any model loads.

    plan = build_plan(cfg, choices)      # ConfigError naming the key on any bad value

Builds the cheap objects (samplers, evaluation protocol, dataset handle, pool
source, encoder, the W&B tracker's factory) and every run-level value into one
frozen Plan: their constructors check every value, nothing heavy (weights,
images) is loaded here, and nothing after build_plan reads the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from sas.errors import ConfigError

__all__ = ["ConfigError", "Plan", "build_plan", "comparable_config", "resolved_config", "DistillConfig",
           "register_schema", "IGNORED_KEYS"]


@dataclass
class DistillConfig:
    """The schema of conf/distill.yaml (Hydra structured config): run-level keys are typed and checked by
    Hydra when it composes (a bad value or an unknown key fails naming it); the groups are free-form and
    checked by the classes they build."""

    dataset: Any = None
    pool: Any = None
    encoder: Any = None
    sampler: Any = None
    model: Any = None
    eval: Any = None
    logger: Any = None
    paths: Any = None
    name: str = "default"                     # experiment name: W&B group and output folder
    seed: int = 0
    overwrite: bool = False                   # replace results of another config in the same output folder
    progress: bool = True
    prototype_per_class: Optional[int] = None  # real train images per class for visual prototypes (None: all)
    eval_split: str = "val"                   # val: the real validation split (reported figures); holdout: the
                                              # first holdout_per_class real train images per class (tuning)
    holdout_per_class: int = 50
    compare: Dict[str, Any] = field(default_factory=dict)   # more samplers on the same pool, at the run sampler's
                                                            # ipc and pool_mult (experiment=demo)
    job_name: Optional[str] = None            # W&B run name (default: the output folder's name)
    pictures: bool = True                     # score histograms, embedding map, selected grid (PNG + W&B)
    map_method: str = "auto"                  # embedding map: auto (t-SNE up to 250 images, else PCA) | tsne | pca
    ddranking: bool = False                   # also DD-Ranking's HLR / IOR / DDRS / LRS for every sampler
    ddranking_weight: float = 0.5             # w of DDRS's (and LRS's) a = w IOR - (1 - w) HLR, in [0, 1]
    ddranking_lr_search: List[float] = field(default_factory=lambda: [0.001, 0.005, 0.01, 0.05, 0.1])
                                              # the package's learning rates for the hard-label and random runs
    ddranking_hard_mix: bool = False          # mix the hard-label runs' batches too (the package's use_aug_for_hard)
    ddranking_hard: Any = None                # the hard-label protocol (an eval config); null: the run's protocol
                                              # with the package's hard-label procedure (Protocol.ddranking_hard)
    ddranking_full: str = "train"             # acc(real, hard): train (here, cached) | cached (the package's figure)
    stop_after: Optional[str] = None          # pool | encode: only fill the shared cache (shard jobs, torchrun
                                              # ranks); null: the whole run
    quality: bool = True                      # Fréchet distance and precision / recall / density / coverage of
                                              # the pool and every selected set against the real train split
    quality_k: int = 5                        # their k nearest neighbours (Naeem et al.'s default)
    quality_real_per_class: Optional[int] = 100   # real train images per class they compare with (null: all;
                                                  # the overall figures cost O((classes x this)^2) distances)


MAX_NAME_BYTES = 200        # one folder name of a run folder (filesystems allow 255)


def folder_name(overrides: str) -> str:
    """A run folder's name from Hydra's override_dirname, each path part at most MAX_NAME_BYTES: a longer part
    keeps its start and ends in a hash of the whole, so the same overrides always give the same folder."""
    import hashlib

    def short(part: str) -> str:
        raw = part.encode()
        if len(raw) <= MAX_NAME_BYTES:
            return part
        return raw[:MAX_NAME_BYTES - 17].decode(errors="ignore") + "," + hashlib.sha256(raw).hexdigest()[:16]
    return "/".join(short(part) for part in str(overrides).split("/"))


def register_schema() -> None:
    """Make `distill_schema` known to Hydra (conf/distill.yaml lists it first in its defaults) and the
    `sas.folder` resolver its run folders use."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf
    ConfigStore.instance().store(name="distill_schema", node=DistillConfig)
    if not OmegaConf.has_resolver("sas.folder"):
        OmegaConf.register_new_resolver("sas.folder", folder_name)


register_schema()




IGNORED_KEYS = ("overwrite", "logger", "progress", "job_name")   # how a run looks, not what it computes


@dataclass(frozen=True)
class Plan:
    """Everything a distill job needs, read from the config once (build_plan): nothing after it reads the config.
    The stages (sas.pipeline) take their inputs from here and hand each other the objects of sas.artifacts."""

    # what the run selects from, and how it evaluates
    samplers: dict                  # choice name -> Sampler; the first is the run's own sampler
    protocol: object                # sas.evaluation.protocol.Protocol
    model: dict                     # the model config (resolved): what evaluation trains
    data: object                    # sas.data.real.RealData
    pool: object                    # anything with paths(n_per_class, PoolContext): generated, trained, folder, real
    encoder: object
    n_per_class: int | None         # pool images per class = max(pool_mult x ipc); None: the whole pool
    # the run and its records
    name: str                       # experiment name: W&B group, output folder
    choices: dict                   # the config group choices (the report's cell keys)
    config: dict                    # the comparable config (what the run folder stores)
    output_dir: Path | None         # the run folder (Hydra's job folder); None outside a Hydra app
    overwrite: bool
    tracker: object                 # conf/logger's partial sas.tracking.Tracker
    wandb_config: dict              # the resolved config, logged to W&B
    group_by: dict                  # flat keys W&B groups runs by
    job_name: str | None
    seed: int                       # the run seed (DD-Ranking's random subsets)
    progress: bool
    pictures: bool
    map_method: str
    # the pool and the shared cache
    cache_dir: str
    pool_seed: int
    pool_label: str | None          # the report's column name
    shard: int                      # pool.shard of pool.num_shards (sas.shards)
    num_shards: int
    stop_after: str | None          # pool | encode: a cache-filling job
    # the real data a run reads
    data_key: dict                  # the dataset config (resolved): identifies the real data
    eval_split: str                 # val | holdout
    holdout_per_class: int
    prototype_per_class: int | None
    # DD-Ranking
    ddranking: bool
    ddranking_weight: float
    ddranking_lr_search: tuple
    ddranking_hard: object          # the hard-label protocol of HLR
    ddranking_full: str             # train | cached
    launch: dict = field(default_factory=dict)   # Hydra's launch record (file name -> YAML) for <run>/.hydra/
    quality: bool = True            # set quality against the real train split (sas.evaluation.quality)
    quality_k: int = 5
    quality_real_per_class: int | None = 100

    @property
    def main(self) -> str:
        return next(iter(self.samplers))

    @property
    def ipc(self) -> int:
        return self.samplers[self.main].ipc


def _build(cfg_node, key: str, group: str | None = None):
    """Instantiate a group's config once its targets are of the group's kind (sas.targets)."""
    from hydra.utils import instantiate

    from sas.targets import check_targets
    check_targets(cfg_node, group or key, key)
    try:
        return instantiate(cfg_node, _convert_="all")
    except Exception as err:  # hydra wraps constructor errors; report the constructor's own message
        cause = err.__cause__ or err
        raise ConfigError(f"invalid {key} config: {cause}") from None


def _output_dir(cfg):
    try:
        return Path(cfg.paths.output_dir)               # Hydra's run folder under distill.py
    except Exception:  # the ${hydra:...} default cannot resolve outside a Hydra app
        return None


def resolved_config(cfg) -> dict:
    """The config as plain data, every interpolation resolved (paths.output_dir: the run folder, or None)."""
    from omegaconf import OmegaConf
    out = _output_dir(cfg)
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.setdefault("paths", {})["output_dir"] = None if out is None else str(out)
    return OmegaConf.to_container(OmegaConf.create(plain), resolve=True)


def comparable_config(cfg) -> dict:
    """What a run folder stores to recognise its config: resolved, without the keys that change how a run looks
    (IGNORED_KEYS) or where it writes."""
    return _comparable(resolved_config(cfg))


def _comparable(resolved: dict) -> dict:
    """comparable_config from the resolved config (left as it is)."""
    c = {k: v for k, v in resolved.items() if k not in IGNORED_KEYS}
    if isinstance(c.get("paths"), dict):
        c["paths"] = {k: v for k, v in c["paths"].items() if k != "output_dir"}
    return c


def build_plan(cfg, choices: dict | None = None, launch: dict | None = None) -> Plan:
    """Every value checked (ConfigError naming the key), nothing heavy loaded. choices: the config group choices
    (distill.py passes Hydra's); choices["sampler"] names the run's sampler (its selection and results), else the
    sampler's own name; comparison samplers are keyed by their names under `compare`. launch: Hydra's launch
    record (distill.py's launch_record), written into the run folder when the run starts."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    choices = dict(choices or {})
    if cfg.get("sampler") is None:
        raise ConfigError("no sampler configured: choose one with sampler=<name>")
    main = _build(cfg.sampler, "sampler")
    samplers = {choices.get("sampler") or main.name: main}
    for name, node in (cfg.get("compare") or {}).items():     # on the same pool: the run's ipc and pool_mult
        samplers[name] = _build(OmegaConf.merge(node, {"ipc": main.ipc, "pool_mult": main.pool_mult}),
                                f"compare.{name}", "sampler")
    protocol = _build(cfg.eval, "eval")
    data = _build(cfg.dataset, "dataset")
    try:
        if data.layout in ("imagenet", "folder", "fastai") and not (data.layout == "fastai" and data.download):
            data.check()
    except ValueError as err:
        raise ConfigError(f"dataset: {err}") from None
    try:
        protocol.check(data.table)                     # e.g. the soft-label teacher's weights, loaded now
    except ValueError as err:
        raise ConfigError(str(err)) from None
    pool = _build(cfg.pool.source, "pool.source")
    if cfg.pool.get("train") is not None:              # the generator is trained on the real split first
        from sas.targets import check_targets
        for group in ("generator", "trainer", "train_logger"):
            if cfg.pool.train.get(group) is not None:
                check_targets(cfg.pool.train[group], group, f"pool.train.{group}")
        for name, node in (cfg.pool.train.get("callbacks") or {}).items():
            check_targets(node, "callbacks", f"pool.train.callbacks.{name}")
        from sas.pools.trained import TrainedPool
        pool = TrainedPool(pool, OmegaConf.to_container(cfg.pool.train, resolve=False),  # relative interpolations:
                           OmegaConf.to_container(cfg.dataset, resolve=True), int(cfg.seed),  # resolved with
                                                                                              # output_dir, later
                           {"cache_dir": str(cfg.paths.cache_dir), "data_dir": str(cfg.paths.data_dir)})
    encoder = _build(cfg.encoder, "encoder")
    if not isinstance(cfg.pool.get("seed", 0), int):
        raise ConfigError(f"pool.seed must be an integer, got {cfg.pool.seed!r}")
    if cfg.get("eval_split", "val") not in ("val", "holdout"):
        raise ConfigError(f"eval_split must be val or holdout, got {cfg.eval_split!r}")
    shard, num_shards, stop_after = cfg.pool.get("shard", 0), cfg.pool.get("num_shards", 1), cfg.get("stop_after")
    whole = [name for name, s in samplers.items() if s.pool_mult is None]
    if whole:
        from sas.pools.real import RealPool
        if not isinstance(pool, RealPool):
            raise ConfigError(f"sampler.pool_mult=null (the whole pool) needs pool=real; the '{whole[0]}' sampler "
                              f"has it with pool.source {type(pool).__name__}")
        n = None
    else:
        n = max(s.pool_mult * s.ipc for s in samplers.values())
        if isinstance(num_shards, int) and num_shards > n * len(data.table):
            raise ConfigError(f"pool.num_shards={num_shards} is more than the pool's {n * len(data.table)} images "
                              f"({n} per class x {len(data.table)} classes): at most one shard per image")
    try:
        from sas.shards import Shard
        Shard(shard, num_shards)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.get("map_method", "auto") not in ("auto", "tsne", "pca"):
        raise ConfigError(f"map_method must be auto, tsne or pca, got {cfg.map_method!r}")
    if stop_after not in (None, "pool", "encode"):
        raise ConfigError(f"stop_after must be pool, encode or null, got {stop_after!r}")
    from sas.shards import rank_world
    if stop_after is None and (num_shards > 1 or rank_world()[1] > 1):
        raise ConfigError(f"pool.num_shards={num_shards} with world size {rank_world()[1]}: shard jobs and "
                          "torchrun ranks only fill the cache; add stop_after=pool (or encode), then run the "
                          "selection once without them")
    from sas.targets import check_targets
    check_targets(cfg.model, "model")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    ddranking = bool(cfg.get("ddranking", False))
    weight = cfg.get("ddranking_weight", 0.5)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 <= weight <= 1:
        raise ConfigError(f"ddranking_weight must be a number in [0, 1], got {weight!r}")
    search = tuple(cfg.get("ddranking_lr_search") or ())
    if any(not isinstance(x, (int, float)) or not 0 < x < float("inf") for x in search):
        raise ConfigError(f"ddranking_lr_search must list positive learning rates, got {list(search)}")
    full = cfg.get("ddranking_full", "train")
    if full not in ("train", "cached"):
        raise ConfigError(f"ddranking_full must be train or cached, got {full!r}")
    hard = None
    if ddranking:
        from sas.evaluation.ddranking import cached_full_accuracy, model_name
        if full == "cached":
            try:
                cached_full_accuracy(data.table.name, model_name(model))
            except KeyError as err:
                raise ConfigError(str(err.args[0])) from None
        hard = _build(cfg.ddranking_hard, "ddranking_hard", "eval") if cfg.get("ddranking_hard") is not None else \
            protocol.ddranking_hard(search, bool(cfg.get("ddranking_hard_mix", False)))
    quality_k, real_per_class = cfg.get("quality_k", 5), cfg.get("quality_real_per_class", 100)
    if isinstance(quality_k, bool) or not isinstance(quality_k, int) or quality_k < 1:
        raise ConfigError(f"quality_k must be an integer >= 1, got {quality_k!r}")
    if real_per_class is not None and (isinstance(real_per_class, bool) or not isinstance(real_per_class, int)
                                       or real_per_class <= quality_k):
        raise ConfigError(f"quality_real_per_class must be an integer above quality_k={quality_k} (or null: all), "
                          f"got {real_per_class!r}")
    group_by = {"dataset": cfg.dataset.name, "sampler": choices.get("sampler"), "ipc": main.ipc,
                "pool_mult": main.pool_mult, "model": choices.get("model"), "pool": choices.get("pool"),
                "encoder": choices.get("encoder"), "eval": choices.get("eval")}
    check_targets(cfg.logger, "logger")
    try:
        tracker = instantiate(cfg.logger)               # partial: the run folder comes when the run starts
    except Exception as err:
        raise ConfigError(f"invalid logger config: {err.__cause__ or err}") from None
    resolved = resolved_config(cfg)
    return Plan(
        samplers=samplers, protocol=protocol, model=model, data=data, pool=pool, encoder=encoder, n_per_class=n,
        name=str(cfg.name), choices=choices, config=_comparable(resolved), output_dir=_output_dir(cfg),
        overwrite=bool(cfg.get("overwrite", False)), tracker=tracker, wandb_config=resolved,
        group_by=group_by, job_name=cfg.get("job_name"), seed=int(cfg.get("seed", 0)),
        progress=bool(cfg.get("progress", True)), pictures=bool(cfg.get("pictures", True)),
        map_method=str(cfg.get("map_method", "auto")),
        cache_dir=str(cfg.paths.cache_dir), pool_seed=int(cfg.pool.get("seed", 0)), pool_label=cfg.pool.get("label"),
        shard=shard, num_shards=num_shards, stop_after=stop_after,
        data_key=OmegaConf.to_container(cfg.dataset, resolve=True), eval_split=str(cfg.get("eval_split", "val")),
        holdout_per_class=int(cfg.get("holdout_per_class", 50)), prototype_per_class=cfg.get("prototype_per_class"),
        ddranking=ddranking, ddranking_weight=float(weight), ddranking_lr_search=search, ddranking_hard=hard,
        ddranking_full=full, launch=dict(launch or {}), quality=bool(cfg.get("quality", True)), quality_k=quality_k,
        quality_real_per_class=real_per_class)
