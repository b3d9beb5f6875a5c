"""Minimax fine-tuning of a DiT (DiffFit) as a LightningModule.

    module = MinimaxModule(transformer, null_class=1000)      # transformer: diffusers DiT
    pl.Trainer(max_epochs=8, callbacks=[EMAWeightAveraging(decay=0.9999)]).fit(module, LatentDataModule(...))

Per step: uniform timesteps, the DiT loss (MSE + variational bound with the
learned sigma), plus the Minimax terms over the classes c present in the batch
(on flattened latents; x0_hat is the model's predicted clean latent, with its
gradient):
    representativeness = lambda_pos * (1 - min cos(x0_hat_c, real memory_c))
    diversity          = lambda_neg * max cos(x0_hat_c, predicted memory_c)
each divided by the number of classes in the batch. Per class, memories of the
last `memory_size` real latents and predicted x0_hat (detached), FIFO, updated
after the terms of that class are computed. No step waits on the device: the
schedule tables and memories live there, and the batch's classes are known
from the host's labels (sas.generators.latents passes them along).

Under DDP every process keeps its own memories of the samples it saw (they are
not synchronised, as in the original code); gradients, and so the weights, are
synchronised by DDP. Class labels are dropped to the null class once per sample
(probability class_dropout_prob), not separately in each block.
"""

from __future__ import annotations


import pytorch_lightning as pl
import torch
from torch import Tensor

from sas.generators.diffusion import GaussianDiffusion
from sas.generators.difffit import add_difffit
from sas.generators.dit import match_original_dit

__all__ = ["MinimaxMemory", "MinimaxModule", "cosine_matrix"]


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """(n, ...) x (m, ...) -> (n, m) cosine similarities of the flattened rows."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    return (a @ b.T) / (a.norm(dim=1)[:, None] * b.norm(dim=1)[None, :])


class MinimaxMemory:
    """Per-class FIFO memories of the last `size` real latents and predicted x0_hat (detached), kept as
    ring buffers on the latents' device. Which rows belong to which class comes from the host's labels,
    and the batch is sorted by label on the device, so a step never waits on the device."""

    def __init__(self, size: int = 64):
        self.size = size
        self.real: dict[int, Tensor] = {}      # class -> (size, D) ring buffer (plain dicts: pickles for ddp_spawn)
        self.pred: dict[int, Tensor] = {}
        self.fill: dict[int, int] = {}         # rows written so far (host numbers)

    def _push(self, c: int, real: Tensor, pred: Tensor) -> None:
        """Append rows (n, D) to class c's memories, the oldest leaving first."""
        if c not in self.real:
            self.real[c] = real.new_zeros(self.size, real.shape[1])
            self.pred[c] = pred.new_zeros(self.size, pred.shape[1])
            self.fill[c] = 0
        n = real.shape[0]
        real, pred = real[-self.size:], pred[-self.size:]                # only the newest `size` can stay
        start = (self.fill[c] + n - real.shape[0]) % self.size
        first = min(real.shape[0], self.size - start)
        for store, rows in ((self.real, real), (self.pred, pred)):
            buf = store[c].clone()                     # out of place: this step's graph still reads the old one
            buf[start:start + first] = rows[:first]
            buf[:rows.shape[0] - first] = rows[first:]
            store[c] = buf
        self.fill[c] += n

    def memories(self, c: int) -> tuple[Tensor, Tensor]:
        """(real, predicted) memories of class c, (k, D) each, k = min(rows written, size); any order."""
        k = min(self.fill.get(c, 0), self.size)
        return self.real[c][:k], self.pred[c][:k]

    def terms(self, x0_hat: Tensor, real: Tensor, labels: Tensor, lambda_pos: float, lambda_neg: float,
              host_labels: list[int] | None = None) -> tuple[Tensor, Tensor]:
        """Representativeness and diversity terms of a batch; then the memories take the batch in.

        x0_hat, real: (B, ...) and labels (B,) on the device; host_labels: the same labels as host numbers
        (read from `labels` when not given: one sync).
        """
        host_labels = labels.tolist() if host_labels is None else list(host_labels)
        pos = x0_hat.new_zeros(())
        neg = x0_hat.new_zeros(())
        classes = sorted(set(host_labels))
        counts = [host_labels.count(c) for c in classes]
        order = torch.argsort(labels, stable=True) if len(classes) > 1 else None
        xs = (x0_hat if order is None else x0_hat[order]).flatten(1)     # (B, D), grouped by class
        rs = (real if order is None else real[order]).flatten(1).detach()
        start = 0
        for c, n in zip(classes, counts):
            x_c, r_c = xs[start:start + n], rs[start:start + n]
            start += n
            if self.fill.get(c, 0):
                mem_real, mem_pred = self.memories(c)
                pos = pos + lambda_pos * (1 - cosine_matrix(x_c, mem_real).min()) / len(classes)
                neg = neg + lambda_neg * cosine_matrix(x_c, mem_pred).max() / len(classes)
            self._push(c, r_c, x_c.detach())
        return pos, neg


class MinimaxModule(pl.LightningModule):
    def __init__(self, transformer, null_class: int | None = None, lr: float = 1e-3, weight_decay: float = 0.0,
                 lambda_pos: float = 0.002, lambda_neg: float = 0.008, memory_size: int = 64,
                 difffit_blocks: int = 14, class_dropout_prob: float = 0.1, minimax: bool = True):
        super().__init__()
        self.save_hyperparameters(ignore=["transformer"])
        self.transformer = add_difffit(match_original_dit(transformer), difffit_blocks)
        emb = self.transformer.transformer_blocks[0].norm1.emb.class_embedder
        emb.dropout_prob = 0.0                               # dropped once per sample in training_step
        self.null_class = null_class if null_class is not None else int(transformer.config.num_embeds_ada_norm)
        self.diffusion = GaussianDiffusion.linear(1000)
        self.memory = MinimaxMemory(memory_size)

    def training_step(self, batch, batch_idx):
        x0, labels, model_labels, host_labels = batch        # latents (B, C, h, w), labels (B,) x2, host list
        B = x0.shape[0]
        t = torch.randint(0, self.diffusion.num_timesteps, (B,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.diffusion.q_sample(x0, t, noise)
        drop = torch.rand(B, device=x0.device) < self.hparams.class_dropout_prob
        y = torch.where(drop, torch.full_like(model_labels, self.null_class), model_labels)
        out = self.transformer(x_t, timestep=t, class_labels=y).sample
        losses = self.diffusion.losses(out, x0, x_t, t, noise)
        loss = losses["loss"].mean()
        pos = neg = loss.new_zeros(())
        if self.hparams.minimax:
            pos, neg = self.memory.terms(losses["x0_hat"], x0, labels, self.hparams.lambda_pos,
                                         self.hparams.lambda_neg, host_labels)
        total = loss + pos + neg
        # logged every log_every_n_steps (one sync then); not on the progress bar, which would read it each step
        self.log_dict({"train/loss": loss, "train/representativeness": pos, "train/diversity": neg}, on_step=True)
        return total

    def configure_optimizers(self):
        params = [p for p in self.transformer.parameters() if p.requires_grad]
        # fused: one kernel per step, and the step counts stay on the device (no per-parameter .item())
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay, fused=True)
