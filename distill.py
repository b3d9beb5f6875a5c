"""Distill a dataset: pool -> CLIP scores -> selection -> distilled set -> evaluation, logged to W&B.

    python distill.py                                        # the paper's main setting (ImageWoof, Minimax, SAS, IPC 10)
    python distill.py experiment=demo                        # offline demo on real digits (minutes on a CPU)
    python distill.py -m sampler.pool_mult=3,4,5             # a sweep; the pool is generated once
    python distill.py -m sampler=sas,mixed,random            # compare samplers on one pool
    torchrun --nproc_per_node 8 distill.py stop_after=encode # every GPU draws / encodes its stripe of the pool
    python distill.py -m hydra/launcher=slurm pool.shard=0,1,2,3 pool.num_shards=4 stop_after=pool   # 4 jobs
"""

import hydra

import sas.config  # noqa: F401  (registers the config schema with Hydra; imports nothing heavy)


@hydra.main(config_path="conf", config_name="distill", version_base="1.3")
def main(cfg):
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


if __name__ == "__main__":
    main()
