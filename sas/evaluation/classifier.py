"""The downstream classifier of the IDC protocol as a LightningModule.

    module = Classifier(model, epochs=2000, lr=0.01)
    pl.Trainer(max_epochs=2000, check_val_every_n_epoch=20).fit(module, datamodule)
    module.best_top1, module.last_top1, module.curve     # [(epoch, top1), ...]

SGD (momentum, weight decay), learning rate x gamma at the given fractions of
the epochs, CutMix on every batch with probability cutmix_prob, top-1 on the
whole val set at each evaluation (torchmetrics: summed over processes under
DDP). Losses and accuracies stay on the device between evaluations: the host
reads them once per evaluation.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from sas.data.augment import cutmix


class Classifier(pl.LightningModule):
    def __init__(self, model: nn.Module, epochs: int, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, lr_milestones=(2 / 3, 5 / 6), lr_gamma: float = 0.2,
                 cutmix_beta: float = 1.0, cutmix_prob: float = 1.0, seed: int = 0,
                 channels_last: bool = False, metric_prefix: str = "", eval_from_epoch: int = 0):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "teacher"])
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        from torchmetrics import MaxMetric, MeanMetric

        self.curve: list[tuple[int, float]] = []
        self._rng = np.random.default_rng([seed, 7])      # CutMix's per-batch box (host numbers)
        self._gen = None                                  # its partner permutation (on the device)
        # torchmetrics accumulate on the device and reduce over processes under DDP; no NaN checks (a sync)
        self.val_top1 = MeanMetric(nan_strategy="disable")     # mean of (prediction == label): top-1
        self.val_best = MaxMetric(nan_strategy="disable")
        self.train_loss = MeanMetric(nan_strategy="disable")

    @property
    def best_top1(self) -> float:
        return max(a for _, a in self.curve) if self.curve else float("nan")

    @property
    def best_epoch(self) -> int:
        return max(self.curve, key=lambda ea: (ea[1], -ea[0]))[0] if self.curve else -1

    @property
    def last_top1(self) -> float:
        return self.curve[-1][1] if self.curve else float("nan")

    def on_fit_start(self):
        self._eval_every = self.trainer.check_val_every_n_epoch

    def on_train_epoch_start(self):
        # no evaluation before eval_from_epoch (RDED's protocol evaluates only in the last 20% of the epochs);
        # Lightning reads check_val_every_n_epoch afresh each epoch
        if self.hparams.eval_from_epoch:
            before = self.current_epoch < self.hparams.eval_from_epoch
            self.trainer.check_val_every_n_epoch = 1 << 30 if before else self._eval_every

    def forward(self, x):
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch                                                        # (B, 3, S, S), (B,)
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.hparams.seed * 7919 + 7)
        x, y_a, y_b, lam = cutmix(x, y, self.hparams.cutmix_beta, self.hparams.cutmix_prob, self._rng, self._gen)
        logits = self(x)
        loss = lam * F.cross_entropy(logits, y_a) + (1 - lam) * F.cross_entropy(logits, y_b)
        self.train_loss.update(loss.detach())
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_top1.update((self(x).argmax(1) == y).float())

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            self.val_top1.reset()
            return
        top1_t = self.val_top1.compute()                                    # summed over processes
        self.val_top1.reset()
        self.val_best.update(top1_t)
        top1 = float(top1_t)                                                # the one host sync
        # inside fit the epoch counter has not advanced yet; a validate() after fit sees it advanced
        epoch = self.current_epoch + (0 if self.trainer.state.fn == "validate" else 1)
        self.curve.append((epoch, top1))
        p = self.hparams.metric_prefix
        # the curve also goes through Lightning's metrics: under ddp_spawn they are what returns to the caller
        self.log(f"curve/{epoch}", top1_t, logger=False, sync_dist=True)
        metrics = {f"{p}val/top1": top1, f"{p}val/best_top1": float(self.val_best.compute()), f"{p}epoch": float(epoch)}
        if self.train_loss.update_count:
            metrics[f"{p}train/loss"] = float(self.train_loss.compute())
            self.train_loss.reset()
        if self.logger is not None:
            self.logger.log_metrics(metrics, step=epoch)

    def configure_optimizers(self):
        h = self.hparams
        fused = self.device.type == "cuda"
        opt = torch.optim.SGD(self.parameters(), lr=h.lr, momentum=h.momentum, weight_decay=h.weight_decay,
                              **({"fused": True} if fused else {}))
        milestones = [int(f * h.epochs) for f in h.lr_milestones]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=h.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
