"""EMA of a generator's weights as a Lightning callback (Lightning's WeightAveraging, a foreach update).

    EMA(decay=0.9999, from_start=True)                     # Minimax / DiT: starts from the pretrained weights
    EMA(decay=0.9999, warmup_inv_gamma=1.0, warmup_power=0.75)   # diffusers' EMAModel warm-up (DDPM from scratch)

from_start=True: the average is the model as it stands when fit starts (the
pretrained DiT), then ema <- decay * ema + (1 - decay) * w after every optimizer
step, as facebookresearch/DiT and Minimax's train_dit.py do (update_ema(ema,
model, decay=0) before the first step). Lightning's EMAWeightAveraging instead
copies the weights after the first step. With a warm-up the k-th update (k >= 1
after the first copy) uses decay_k = min(decay, 1 - (1 + k / inv_gamma)^-power),
as diffusers' EMAModel with use_ema_warmup. Updates are one torch._foreach_lerp_
over the parameters, with the decay kept on the device. When fit ends the model
holds the average (what is saved and sampled).
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
        super().__init__(use_buffers=False, multi_avg_fn=self._update)

    def step_decay(self, n_averaged: torch.Tensor) -> torch.Tensor:
        """The decay of an update after n_averaged earlier ones (a device tensor: no host sync)."""
        n = n_averaged.to(torch.float64)
        if self.warmup_inv_gamma is None:
            return torch.full_like(n, self.decay)
        return (1 - (1 + n / self.warmup_inv_gamma) ** -self.warmup_power).clamp(0.0, self.decay)

    @torch.no_grad()
    def _update(self, ema_params, params, n_averaged) -> None:
        weight = (1 - self.step_decay(n_averaged)).to(ema_params[0].dtype)
        torch._foreach_lerp_(ema_params, params, weight)

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit" and self.from_start and self._average_model is not None:
            self._average_model.n_averaged.fill_(1)          # the copy taken now is the first average
