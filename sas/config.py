"""Validation of a composed distill config, before any model loads.

    plan = build_plan(cfg)      # ConfigError naming the key on any bad value

Builds the cheap objects (samplers, evaluation protocol, dataset handle, pool
source, encoder) from the config: their constructors check every value, and
nothing heavy (weights, images) is loaded here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["ConfigError", "Plan", "build_plan", "DistillConfig", "register_schema"]


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
    compare: Dict[str, Any] = field(default_factory=dict)   # more samplers on the same pool (experiment=demo)
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


class ConfigError(ValueError):
    """A bad config value; the message names the key."""


@dataclass
class Plan:
    samplers: dict          # choice name -> Sampler; the first is the run's own sampler
    protocol: object        # sas.evaluation.protocol.Protocol
    data: object            # sas.data.real.RealData
    pool: object            # anything with paths(n_per_class, PoolContext): generated, trained, folder, real
    encoder: object
    n_per_class: int | None  # pool images per class = max(pool_mult x ipc); None: the whole pool
    model: dict = field(default_factory=dict)        # the model config (resolved): what evaluation trains
    eval_config: dict = field(default_factory=dict)  # the protocol config (resolved): part of the repeats' key
    cache_dir: str = ""                              # the shared cache
    pool_seed: int = 0
    progress: bool = True
    shard: int = 0                                   # pool.shard of pool.num_shards (sas.shards)
    num_shards: int = 1
    stop_after: str | None = None                    # pool | encode: a cache-filling job
    data_key: dict = field(default_factory=dict)     # the dataset config (resolved): identifies the real data
    ddranking: bool = False
    ddranking_weight: float = 0.5
    ddranking_lr_search: tuple = ()                  # learning rates of DD-Ranking's hard-label and random runs
    ddranking_hard: object = None                    # the hard-label protocol of HLR (None: derived from protocol)
    ddranking_full: str = "train"                    # train | cached
    seed: int = 0                                    # the run seed (the DD-Ranking random subsets')
    pictures: bool = True
    map_method: str = "auto"

    @property
    def main(self) -> str:
        return next(iter(self.samplers))


def _build(cfg_node, key: str):
    from hydra.utils import instantiate
    try:
        return instantiate(cfg_node, _convert_="all")
    except Exception as err:  # hydra wraps constructor errors; report the constructor's own message
        cause = err.__cause__ or err
        raise ConfigError(f"invalid {key} config: {cause}") from None


def build_plan(cfg, sampler_name: str | None = None) -> Plan:
    """sampler_name: the run's sampler choice (sampler=<name>; default: the sampler's own name), the key of
    its selection and results; comparison samplers are keyed by their names under `compare`."""
    if cfg.get("sampler") is None:
        raise ConfigError("no sampler configured: choose one with sampler=<name>")
    main = _build(cfg.sampler, "sampler")
    samplers = {sampler_name or main.name: main}
    for name, node in (cfg.get("compare") or {}).items():
        samplers[name] = _build(node, f"compare.{name}")
    ipcs = {s.ipc for s in samplers.values()}
    if len(ipcs) > 1:
        raise ConfigError(f"compare samplers must share sampler.ipc; got {sorted(ipcs)}")
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
        from sas.pools.trained import TrainedPool
        pool = TrainedPool(pool, cfg.pool.train, cfg.dataset, int(cfg.seed), cfg.paths)
    encoder = _build(cfg.encoder, "encoder")
    if not isinstance(cfg.pool.get("seed", 0), int):
        raise ConfigError(f"pool.seed must be an integer, got {cfg.pool.seed!r}")
    if cfg.get("eval_split", "val") not in ("val", "holdout"):
        raise ConfigError(f"eval_split must be val or holdout, got {cfg.eval_split!r}")
    whole = [name for name, s in samplers.items() if s.pool_mult is None]
    if whole:
        from sas.pools.real import RealPool
        if not isinstance(pool, RealPool):
            raise ConfigError(f"sampler.pool_mult=null (the whole pool) needs pool=real; the '{whole[0]}' sampler "
                              f"has it with pool.source {type(pool).__name__}")
        n = None
    else:
        n = max(s.pool_mult * s.ipc for s in samplers.values())
    shard, num_shards, stop_after = cfg.pool.get("shard", 0), cfg.pool.get("num_shards", 1), cfg.get("stop_after")
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
    from omegaconf import OmegaConf
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
        hard = _build(cfg.ddranking_hard, "ddranking_hard") if cfg.get("ddranking_hard") is not None else \
            protocol.ddranking_hard(search, bool(cfg.get("ddranking_hard_mix", False)))
    return Plan(samplers, protocol, data, pool, encoder, n, model, OmegaConf.to_container(cfg.eval, resolve=True),
                str(cfg.paths.cache_dir), int(cfg.pool.get("seed", 0)), bool(cfg.get("progress", True)), shard,
                num_shards, stop_after, OmegaConf.to_container(cfg.dataset, resolve=True), ddranking,
                float(weight), search, hard, full, int(cfg.get("seed", 0)), bool(cfg.get("pictures", True)),
                str(cfg.get("map_method", "auto")))
