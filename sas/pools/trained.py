"""A generated pool whose generator is trained on the real train split first (the demo's tiny DDPM).

    pool = TrainedPool(DDPMSource(num_inference_steps=100), train, dataset, seed, paths)   # plain dicts (build_plan)
    files, labels = pool.paths(40, ctx)     # trains once (cached by its settings), then draws like any pool

Built by build_plan whenever a pool config has a `train:` block (conf/pool/ddpm_demo.yaml): the pipeline sees
the same paths(n_per_class, ctx) interface as every other pool. The trained folder lives in
<cache>/generators/<kind>-<key>, keyed by what decides the weights (generator, trainer, dataset, seed), so a
second run, or a second sampler on the same pool, reuses it; a killed training resumes from its last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["TrainedPool"]


@dataclass
class TrainedPool:
    source: object          # a PoolSource with a `model` field, left None: set to the trained folder
    train: dict             # the pool's train block (generator / trainer / callbacks / train_logger), unresolved:
                            # its relative interpolations resolve once output_dir is set
    dataset: dict           # the dataset config (resolved) the generator learns
    seed: int
    paths_cfg: dict         # {"cache_dir": ..., "data_dir": ...}

    def weights(self, progress: bool = True) -> str:
        """The trained generator's folder (trained now unless the cache holds it)."""
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from sas.cache import config_key
        from sas.generators.training import train_generator

        t = OmegaConf.create(self.train)
        dataset = OmegaConf.merge(self.dataset, {"image_size": t.generator.image_size})
        what = OmegaConf.create({"generator": t.generator, "trainer": t.trainer, "dataset": dataset,
                                 "seed": self.seed})                            # what decides the weights ...
        start = instantiate(t.generator, _convert_="all").weights()            # ... and the weights it starts from
        key = config_key({**OmegaConf.to_container(what, resolve=True), "start": start})
        out = Path(self.paths_cfg["cache_dir"]) / "generators" / f"{t.generator.kind}-{key}"
        tcfg = OmegaConf.merge(what, {"callbacks": t.callbacks, "train_logger": t.get("train_logger"),
                                      "paths": self.paths_cfg, "tf32": True, "output_dir": str(out),
                                      "progress": progress})
        return str(train_generator(tcfg))

    def paths(self, n_per_class, ctx) -> tuple[list[str], list[int]]:
        self.source.model = self.weights(ctx.progress)
        return self.source.paths(n_per_class, ctx)
