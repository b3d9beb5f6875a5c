"""Real training images encoded once by the VAE, for fast generator fine-tuning.

    moments = encode_moments(images_uint8, vae)     # (N, 2, 2, C, h, w): [plain, flipped] x [mean, logvar]
    dm = LatentDataModule(moments, labels, model_labels, batch_size=8)   # batch_size: the GLOBAL batch

Each step draws, per image, a horizontal flip and a fresh VAE posterior sample
(mean + std * noise) times the latent scale: the same distribution as encoding
a randomly flipped image every step, at a fraction of the cost (the VAE runs
once per image and flip instead of once per step). The moments and labels move
to the device once; the loader yields indices plus the labels as host numbers
(for the Minimax memories), so no step waits on the device.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from sas.devices import per_process_batch, pin_on_cuda

__all__ = ["encode_moments", "encode_split", "LatentDataModule"]


@torch.no_grad()
def encode_moments(split, vae, batch_size: int = 32, device=None, bar=None) -> torch.Tensor:
    """A resident or streamed split (uint8 (N, 3, H, W)) -> float16 (N, 2, 2, C, H/f, W/f) posterior mean /
    logvar for the image and its mirror."""
    from sas.data.stream import iter_batches

    device = device or next(vae.parameters()).device
    dtype = next(vae.parameters()).dtype
    out = []
    for images, _ in iter_batches(split, batch_size):
        x = images.to(device).to(dtype) / 127.5 - 1                                     # [-1, 1]
        both = []
        for view in (x, x.flip(-1)):
            dist = vae.encode(view).latent_dist
            both.append(torch.stack([dist.mean, dist.logvar], 1))                       # (B, 2, C, h, w)
        out.append(torch.stack(both, 1).half().cpu())                                  # (B, 2, 2, C, h, w)
        if bar is not None:
            bar.update(len(images))
    return torch.cat(out)


LATENT_CHUNK = 4096      # real images per cached chunk of latents: the unit of sharding and resuming


def encode_split(split, vae, folder, progress: bool = True) -> dict:
    """{"moments", "labels"} of a whole real split, cached under folder as chunk-<start>.pt files. The ranks of a
    torch.distributed job take the chunks in shards (sas.shards); a killed run encodes only the chunks it
    lacks; every rank then reads all chunks."""
    from pathlib import Path

    from tqdm.auto import tqdm

    from sas.data.stream import take
    from sas.io import load_checked, record_of, save_checked
    from sas.shards import Shard, barrier

    folder = Path(folder)
    shard = Shard.current()
    starts = list(range(0, len(split), LATENT_CHUNK))
    chunk = lambda s: folder / f"chunk-{s:09d}.pt"                   # noqa: E731

    def encode(todo):
        total = sum(min(LATENT_CHUNK, len(split) - s) for s in todo)
        with tqdm(total=total, desc="encode latents", unit="img", disable=not progress) as bar:
            for s in todo:
                part = take(split, s, s + LATENT_CHUNK)
                save_checked({"moments": encode_moments(part, vae, bar=bar), "labels": part.labels}, chunk(s))

    encode([s for i, s in enumerate(starts) if shard.owns(i) and not record_of(chunk(s)).is_file()])
    barrier()
    parts = {s: load_checked(chunk(s)) for s in starts}         # a damaged chunk is named, set aside, encoded again
    again = [s for s in starts if parts[s] is None]
    if again:
        encode(again)
        parts.update({s: load_checked(chunk(s)) for s in again})
    return {"moments": torch.cat([parts[s]["moments"] for s in starts]),
            "labels": torch.cat([parts[s]["labels"] for s in starts])}


class LatentDataModule(pl.LightningDataModule):
    def __init__(self, moments: torch.Tensor, labels: torch.Tensor, model_labels: torch.Tensor,
                 batch_size: int = 8, latent_scale: float = 0.18215, flip: bool = True, seed: int = 0):
        super().__init__()
        self.moments, self.labels, self.model_labels = moments, labels.long(), model_labels.long()
        self.global_batch_size, self.latent_scale, self.flip, self.seed = batch_size, latent_scale, flip, seed
        self.batch_size = batch_size                                     # per process; set again in setup()
        self._device = None

    def setup(self, stage: str) -> None:
        self.batch_size = per_process_batch(self.global_batch_size, self.trainer)

    def train_dataloader(self):
        # under DDP Lightning gives each process its own shard of this shuffle (DistributedSampler)
        host_labels = self.labels.tolist()

        def collate(ids):                                  # (indices, labels as host numbers)
            return torch.tensor(ids), [host_labels[i] for i in ids]

        return DataLoader(range(len(self.labels)), batch_size=self.batch_size, shuffle=True, drop_last=True,
                          collate_fn=collate, pin_memory=pin_on_cuda(self.trainer))

    def on_after_batch_transfer(self, batch, dataloader_idx):
        idx, host_labels = batch                                             # (B,) on the device, list
        if self._device != idx.device:                                       # once: everything to the device
            rank = self.trainer.global_rank if self.trainer is not None else 0
            self.gen = torch.Generator(device=idx.device).manual_seed(self.seed * 1000 + rank)
            self._on_device = [t.to(idx.device) for t in (self.moments, self.labels, self.model_labels)]
            self._device = idx.device
        moments, labels, model_labels = self._on_device
        m = moments[idx]                                                     # (B, 2, 2, C, h, w)
        rows = torch.arange(len(idx), device=idx.device)
        flip = (torch.rand(len(idx), generator=self.gen, device=idx.device) < 0.5).long() if self.flip \
            else torch.zeros(len(idx), dtype=torch.long, device=idx.device)
        mean, logvar = m[rows, flip, 0].float(), m[rows, flip, 1].float()      # (B, C, h, w)
        noise = torch.randn(mean.shape, generator=self.gen, device=idx.device)
        latents = (mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * noise) * self.latent_scale
        return latents, labels[idx], model_labels[idx], host_labels
