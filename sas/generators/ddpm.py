"""A class-conditional pixel-space DDPM (diffusers UNet2DModel with class embeddings) as a LightningModule.

    module = DDPMModule(unet_config={"sample_size": 32, ..., "num_class_embeds": 10})
    pl.Trainer(max_epochs=..., gradient_clip_val=1.0).fit(module, ImageDataModule(images, labels, batch_size=128))

The paper's CIFAR-10 pool source [20] (KetanMann/Class_Conditioned_Diffusion_Training_Script-MULTI-GPU-,
train_conditional.py: a class-conditional fork of diffusers' train_unconditional.py example). Every setting is a
named value (conf/generator/ddpm.yaml):
  noise schedule     `beta_schedule` over `num_train_timesteps` (squaredcos_cap_v2, 1000)
  prediction         `prediction_type`: sample (the model predicts x0; loss
                     mean(snr_t * (x0_hat - x0)^2), snr_t = abar_t / (1 - abar_t), the
                     example's SNR weighting) or epsilon (plain MSE on the noise)
  optimiser          AdamW(lr, betas, eps, weight_decay); diffusers' get_scheduler(`lr_schedule`):
                     linear warm-up over `warmup_steps`, then cosine over `schedule_horizon` x the optimiser
                     steps (1: to 0 at the last step; [20] under accelerate with gradient accumulation spans more
                     scheduler steps than it takes, see conf/generator/ddpm.yaml)
  EMA, clipping, accumulation: callbacks / Trainer settings (sas.generators.training)
Sampling is `sample_ddpm` (the pool source `sas.pools.ddpm.DDPMSource` adapts it), with the scheduler saved
here (so the prediction type and schedule travel with the weights).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from sas.devices import per_process_batch, pin_on_cuda

__all__ = ["DDPMModule", "ImageDataModule", "snr_weighted_loss", "sample_ddpm"]


def snr_weighted_loss(x0_hat: torch.Tensor, x0: torch.Tensor, alphas_cumprod: torch.Tensor,
                      t: torch.Tensor) -> torch.Tensor:
    """mean over everything of snr_t * (x0_hat - x0)^2, snr_t = abar_t / (1 - abar_t)."""
    abar = alphas_cumprod.to(x0.device)[t].float().view(-1, *([1] * (x0.dim() - 1)))     # (B, 1, 1, 1)
    return (abar / (1 - abar) * (x0_hat.float() - x0.float()) ** 2).mean()


class ImageDataModule(pl.LightningDataModule):
    """uint8 images (N, 3, S, S) + labels, moved to the device once; batches scaled to [-1, 1] with random
    flips there (the loader yields indices only)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, flip: bool = True):
        super().__init__()
        self.images, self.labels, self.flip = images, labels.long(), flip
        self.global_batch_size = self.batch_size = batch_size          # global; per process set in setup()

    def setup(self, stage: str) -> None:
        self.batch_size = per_process_batch(self.global_batch_size, self.trainer)

    def train_dataloader(self):
        return DataLoader(torch.arange(len(self.labels)), batch_size=self.batch_size, shuffle=True, drop_last=False,
                          pin_memory=pin_on_cuda(self.trainer))

    def on_after_batch_transfer(self, batch, dataloader_idx):
        idx = batch                                                    # (B,) on the device
        if getattr(self, "_device", None) != idx.device:               # once: the images move to the device
            self._resident = (self.images.to(idx.device), self.labels.to(idx.device))
            self._device = idx.device
        images, labels = self._resident
        x = images[idx].float() / 127.5 - 1
        if self.flip:
            mirror = torch.rand(len(idx), device=idx.device) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x, labels[idx]


class DDPMModule(pl.LightningModule):
    def __init__(self, unet_config: dict, lr: float = 1e-4, weight_decay: float = 1e-6, betas=(0.95, 0.999),
                 eps: float = 1e-8, num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 prediction_type: str = "sample", warmup_steps: int = 500, lr_schedule: str = "cosine",
                 schedule_horizon: float = 1.0):
        super().__init__()
        from diffusers import DDPMScheduler, UNet2DModel

        if prediction_type not in ("sample", "epsilon"):
            raise ValueError(f"generator.prediction_type must be sample or epsilon, got '{prediction_type}'")
        if lr_schedule not in ("cosine", "constant_with_warmup", "linear"):
            raise ValueError(f"generator.lr_schedule must be cosine, constant_with_warmup or linear, got '{lr_schedule}'")
        self.save_hyperparameters()
        self.unet = UNet2DModel(**unet_config)
        self.scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                                       prediction_type=prediction_type)

    def training_step(self, batch, batch_idx):
        x0, y = batch                                                       # (B, 3, S, S) in [-1, 1], (B,)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        x_t = self.scheduler.add_noise(x0, noise, t)
        out = self.unet(x_t, t, class_labels=y).sample
        if self.hparams.prediction_type == "sample":
            loss = snr_weighted_loss(out, x0, self.scheduler.alphas_cumprod, t)
        else:
            loss = F.mse_loss(out.float(), noise.float())
        self.log("train/loss", loss, on_step=True, on_epoch=True)     # no progress-bar read per step
        return loss

    def configure_optimizers(self):
        from diffusers.optimization import get_scheduler

        h = self.hparams
        opt = torch.optim.AdamW(self.unet.parameters(), lr=h.lr, betas=tuple(h.betas), eps=h.eps,
                                weight_decay=h.weight_decay, fused=True)   # step counts stay on the device
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        sched = get_scheduler(h.lr_schedule, opt, num_warmup_steps=h.warmup_steps,
                              num_training_steps=max(1, round(total * h.schedule_horizon)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def save_pipeline(self, folder) -> None:
        """unet/ and scheduler/ in diffusers layout: what DDPMSource(model=folder) loads."""
        from pathlib import Path
        self.unet.save_pretrained(Path(folder) / "unet")
        self.scheduler.save_pretrained(Path(folder) / "scheduler")


@torch.no_grad()
def sample_ddpm(unet, scheduler, labels: list[int], generators: list[torch.Generator], num_inference_steps: int,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Ancestral DDPM sampling over `num_inference_steps` of the scheduler's schedule (its prediction type:
    epsilon or x0) -> (B, 3, S, S) uint8, class label = `labels`; one generator per image draws its noise."""
    dev = next(unet.parameters()).device
    S, C = unet.config.sample_size, unet.config.in_channels
    scheduler.set_timesteps(num_inference_steps)
    x = torch.stack([torch.randn(C, S, S, generator=g) for g in generators]).to(dev)   # (B, C, S, S)
    y = torch.tensor(labels, device=dev)
    for t in scheduler.timesteps:
        out = unet(x.to(dtype), t, class_labels=y).sample.float()          # eps or x0, as trained
        x = scheduler.step(out, t, x, generator=generators).prev_sample
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
