"""The Hydra applications behind distill.py / train.py and the console scripts (sas.cli): one function each,
taking the composed config.

    distill_app(cfg)    # conf/distill.yaml: check (build_plan), run (sas.pipeline), record a failure
    train_app(cfg)      # conf/train.yaml: train a pool generator (sas.generators.training)
"""

from __future__ import annotations

__all__ = ["distill_app", "train_app", "launch_record", "user_errors"]


def distill_app(cfg):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from sas.config import build_plan, comparable_config
    from sas.console import quiet
    from sas.pipeline import run_plan
    from sas.run_folder import RunFolder
    from sas.shards import init_from_env
    quiet()
    init_from_env()                                      # torchrun / srun: join the process group
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra")}
    launch = launch_record(cfg, hc)
    try:
        return run_plan(build_plan(cfg, choices, launch))  # every value checked first, then the stages
    except Exception as err:
        if cfg.get("stop_after") is None:                # a cache-filling job leaves no run records
            try:
                config = comparable_config(cfg)
            except Exception:  # an unresolvable config: failed.json alone records the failure
                config = None
            RunFolder(hc.runtime.output_dir, config).fail(err, choices, launch)   # the report marks the cell
        if hc.mode == RunMode.MULTIRUN:                  # the other jobs of the sweep go on
            return float("nan")
        if isinstance(err, user_errors()):               # its message says what to do: no traceback
            raise SystemExit(1) from None
        raise


def train_app(cfg):
    from sas.console import quiet
    from sas.generators.training import train_generator
    quiet()
    print(f"trained generator: {train_generator(cfg)}")


def launch_record(cfg, hc) -> dict:
    """What Hydra would write to <run>/.hydra/ (conf/distill.yaml turns that off): the composed config, Hydra's
    own and the command-line overrides, written by the run folder once the run is accepted there."""
    from omegaconf import OmegaConf
    return {"config.yaml": OmegaConf.to_yaml(cfg), "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hc})),
            "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(hc.overrides.task)))}


def user_errors() -> tuple:
    """Errors that name the setting, file or weights at fault and what to do about them."""
    from sas.config import ConfigError
    from sas.data.images import DataError
    from sas.hub import WeightsNotFound
    from sas.run_folder import FolderBusy
    return ConfigError, DataError, WeightsNotFound, FolderBusy
