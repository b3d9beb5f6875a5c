"""A grid of samples per class, logged to W&B every N training steps while a generator trains.

    SampleGrid(make_sampler, class_ids, every_n_steps=500, per_class=4)     # a Lightning Callback

make_sampler(module) returns a function (labels, generators) -> uint8 images (B, 3, S, S) that samples with
the module's current weights (sas.generators.dit.sample_dit, sas.generators.ddpm.sample_ddpm); class_ids are the
model labels of the classes shown (the first `max_classes` of the dataset). Every grid
draws the same noise (one generator per image, seeded from (seed, class, k)), so grids over training show
the same images forming. Only the global-zero process samples, in eval mode, without gradients.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

__all__ = ["SampleGrid"]


class SampleGrid(pl.Callback):
    def __init__(self, make_sampler, class_ids: list[int], every_n_steps: int = 500, per_class: int = 4,
                 seed: int = 0, key: str = "samples"):
        self.make_sampler, self.class_ids = make_sampler, list(class_ids)
        self.every, self.per_class, self.seed, self.key = int(every_n_steps), int(per_class), seed, key

    def grid(self, module) -> torch.Tensor:
        """(3, H', W') uint8: one row per class, per_class samples each."""
        from torchvision.utils import make_grid

        from sas.cache import image_seed

        labels = [c for c in self.class_ids for _ in range(self.per_class)]
        gens = [torch.Generator().manual_seed(image_seed(self.seed, c, k))
                for c in self.class_ids for k in range(self.per_class)]
        was_training = module.training
        module.eval()
        try:
            images = self.make_sampler(module)(labels, gens).cpu()                  # (B, 3, S, S) uint8
        finally:
            module.train(was_training)
        return make_grid(images, nrow=self.per_class, padding=1)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if not trainer.is_global_zero or not trainer.logger or step % self.every:
            return
        import wandb
        grid = self.grid(pl_module)
        trainer.logger.experiment.log({self.key: wandb.Image(grid.permute(1, 2, 0).numpy(),
                                                             caption=f"step {step}: one row per class"),
                                       "trainer/global_step": step})
