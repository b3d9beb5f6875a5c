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
    from sas.apps import distill_app
    return distill_app(cfg)


if __name__ == "__main__":
    main()
