"""What each config group may build. A config names code by `_target_` (a config folder is trusted like code),
but each group is instantiated only from a target of its own kind, checked before anything is built: a plug-in
sampler subclasses sas.sampling.Sampler, a pool source sas.pools.base.PoolSource, and so on.

    check_targets(cfg.sampler, "sampler")     # ConfigError naming the key and the target, or nothing
    check_targets(cfg.pool.source, "pool.source", key="pool.source")

A target names a class (any subclass of the group's kinds is accepted) or a function (only those named). A
`_target_` nested inside a group's config (the domain encoder's model, the soft-label teacher) must be a model.
Resolving a target imports its module, as Python does for any plug-in; nothing is called.
"""

from __future__ import annotations

__all__ = ["KINDS", "check_targets"]

MODEL = ("torch.nn.Module", "sas.models.*", "torchvision.models.*")     # classes, or factories in these packages

KINDS = {
    "sampler": ("sas.sampling.Sampler",),
    "eval": ("sas.evaluation.protocol.Protocol",),
    "dataset": ("sas.data.real.RealData",),
    "pool.source": ("sas.pools.base.PoolSource",),
    "encoder": ("sas.encoders.base.Encoder",),
    "logger": ("sas.tracking.Tracker",),
    "model": MODEL,
    "generator": ("sas.generators.recipes.GeneratorRecipe",),
    "trainer": ("sas.trainer.lightning_trainer", "pytorch_lightning.Trainer"),
    "callbacks": ("pytorch_lightning.Callback",),
    "train_logger": ("sas.tracking.wandb_logger",),
}


def _fits(obj, kinds) -> bool:
    from hydra.utils import get_object
    for kind in kinds:
        if kind.endswith(".*"):                              # a factory function of a model package
            package = kind[:-2]
            if not isinstance(obj, type) and callable(obj) and \
                    (getattr(obj, "__module__", "") or "").startswith(package + "."):
                return True
            continue
        want = get_object(kind)
        if isinstance(want, type) and isinstance(obj, type) and issubclass(obj, want):
            return True
        if obj is want:
            return True
    return False


def check_targets(node, group: str, key: str | None = None) -> None:
    """Every `_target_` in a group's config (a DictConfig or plain mapping) is of the group's kind (KINDS[group];
    nested ones: a model). ConfigError naming the key and the target otherwise, before anything is built."""
    from hydra.utils import get_object
    from omegaconf import OmegaConf

    from sas.errors import ConfigError

    key = key or group
    plain = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node

    def walk(value, where: str, kinds) -> None:
        if isinstance(value, dict):
            target = value.get("_target_")
            if target is not None:
                try:
                    obj = get_object(str(target))
                except Exception as err:
                    raise ConfigError(f"{where}._target_: cannot import '{target}' ({err})") from None
                if not _fits(obj, kinds):
                    raise ConfigError(
                        f"{where}._target_ '{target}' is not what {where} builds (one of: {', '.join(kinds)}); "
                        "a config group builds only its own kind (plug-ins subclass it)")
            for k, v in value.items():
                if k != "_target_":
                    walk(v, f"{where}.{k}", MODEL)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]", MODEL)

    walk(plain, key, KINDS[group])
