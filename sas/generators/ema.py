"""EMA of a generator's weights as a Lightning callback (Lightning's WeightAveraging, a foreach update).

    EMA(decay=0.9999, from_start=True)                     # Minimax / DiT: starts from the pretrained weights
    EMA(decay=0.9999, warmup_inv_gamma=1.0, warmup_power=0.75)   # diffusers' EMAModel warm-up (DDPM from scratch)

from_start=True: the average is the model as it stands when fit starts (the
pretrained DiT), then ema <- decay * ema + (1 - decay) * w after every optimizer
step, as facebookresearch/DiT and Minimax's train_dit.py do (update_ema(ema,
model, decay=0) before the first step). Lightning's EMAWeightAveraging instead
copies the weights after the first step. With a warm-up the k-th update (k >= 1
after the first copy) uses decay_k = min(decay, 1 - (1 + k / inv_gamma)^-power),
as diffusers' EMAModel with use_ema_warmup. Each update is one
torch._foreach_lerp_ over the parameters that train (frozen ones equal their
average for good: a DiT-XL fine-tune averages 1.5% of its tensors' elements),
with the decay a host number from the step count: no host sync per step. When
fit ends the model holds the average (what is saved and sampled).
"""

from __future__ import annotations

import torch
from pytorch_lightning.callbacks import WeightAveraging

__all__ = ["EMA"]


class EMA(WeightAveraging):
    def __init__(self, decay: float = 0.9999, from_start: bool = True, warmup_inv_gamma: float | None = None,
                 warmup_power: float = 0.75):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ema decay must be in [0, 1], got {decay}")
        self.decay, self.from_start = float(decay), bool(from_start)
        self.warmup_inv_gamma, self.warmup_power = warmup_inv_gamma, float(warmup_power)
        super().__init__(use_buffers=False)
        self._pairs = None                                   # (averaged, live) lists of the trained parameters

    def step_decay(self, n: int) -> float:
        """The decay of an update that follows n earlier averages (the start copy counts as one)."""
        if n <= 0:
            return 0.0                                       # the first average is a copy
        if self.warmup_inv_gamma is None:
            return self.decay
        return min(self.decay, max(0.0, 1 - (1 + n / self.warmup_inv_gamma) ** -self.warmup_power))

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._pairs = None                                   # a new fit averages into a new copy

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step                           # optimizer steps so far (host number)
        if step <= self._latest_update_step:
            return                                           # gradient accumulation: no new step yet
        if self._pairs is None:
            live = [p for p in pl_module.parameters()]
            avg = list(self._average_model.module.parameters())
            keep = [i for i, p in enumerate(live) if p.requires_grad]
            self._pairs = ([avg[i].detach() for i in keep], [live[i].detach() for i in keep])
        n = step - 1 + (1 if self.from_start else 0)         # averages before this one
        with torch.no_grad():
            torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - self.step_decay(n))
            self._average_model.n_averaged.add_(1)           # on the device; kept for checkpoints
        self._latest_update_step = step
