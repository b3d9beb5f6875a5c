"""A class-conditional pixel-space DDPM (diffusers UNet2DModel with class embeddings) as a LightningModule.

    module = DDPMModule(unet_config={"sample_size": 32, ..., "num_class_embeds": 10})
    pl.Trainer(max_epochs=...).fit(module, ImageDataModule(images, labels))

The paper's CIFAR-10 pool source: eps-prediction MSE at uniform timesteps of a
linear-beta DDPM (1,000 steps), AdamW. Sampling is `sas.pools.ddpm.DDPMSource`.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

__all__ = ["DDPMModule", "ImageDataModule"]


class ImageDataModule(pl.LightningDataModule):
    """uint8 images (N, 3, S, S) + labels, scaled to [-1, 1] with random flips, on the device."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, flip: bool = True):
        super().__init__()
        self.images, self.labels, self.batch_size, self.flip = images, labels.long(), batch_size, flip

    def train_dataloader(self):
        return DataLoader(torch.arange(len(self.labels)), batch_size=self.batch_size, shuffle=True, drop_last=False)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        idx = batch.cpu()
        x = self.images[idx].to(batch.device).float() / 127.5 - 1
        if self.flip:
            mirror = torch.rand(len(idx), device=batch.device) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x, self.labels[idx].to(batch.device)


class DDPMModule(pl.LightningModule):
    def __init__(self, unet_config: dict, lr: float = 2e-4, weight_decay: float = 0.0,
                 num_train_timesteps: int = 1000, beta_schedule: str = "linear"):
        super().__init__()
        from diffusers import DDPMScheduler, UNet2DModel

        self.save_hyperparameters()
        self.unet = UNet2DModel(**unet_config)
        self.scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule)

    def training_step(self, batch, batch_idx):
        x0, y = batch
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        x_t = self.scheduler.add_noise(x0, noise, t)
        loss = F.mse_loss(self.unet(x_t, t, class_labels=y).sample, noise)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.unet.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def save_pipeline(self, folder) -> None:
        """unet/ and scheduler/ in diffusers layout: what DDPMSource(model=folder) loads."""
        from pathlib import Path
        self.unet.save_pretrained(Path(folder) / "unet")
        self.scheduler.save_pretrained(Path(folder) / "scheduler")
