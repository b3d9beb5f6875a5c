"""Distill a dataset: pool -> CLIP scores -> selection -> distilled set -> evaluation, logged to W&B.

    python distill.py                                        # the paper's main setting (ImageWoof, Minimax, SAS, IPC 10)
    python distill.py experiment=demo                        # offline demo on real digits (minutes on a CPU)
    python distill.py -m sampler.pool_mult=3,4,5             # a sweep; the pool is generated once
    python distill.py -m sampler=sas,mixed,random            # compare samplers on one pool
"""

import hydra


@hydra.main(config_path="conf", config_name="distill", version_base="1.3")
def main(cfg):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from sas.pipeline import run
    runtime = HydraConfig.get().runtime
    with open_dict(cfg):
        cfg.paths.output_dir = runtime.output_dir
    return run(cfg, choices={k: v for k, v in runtime.choices.items() if not k.startswith("hydra")})


if __name__ == "__main__":
    main()
