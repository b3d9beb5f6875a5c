"""Soft-label evaluation (RDED / SRe2L line): a teacher labels every augmented batch on the fly and the student
learns its temperature-scaled probabilities.

    protocol = SoftLabelProtocol(teacher={"_target_": "torchvision.models.resnet18"},
                                 teacher_weights="torchvision:ResNet18_Weights.IMAGENET1K_V1")
    result = evaluate(distilled, real_val, model, protocol, ipc=10, context=EvalContext(...))

Every setting is a named value of SoftLabelProtocol (conf/eval/softlabel.yaml); the defaults are those of
LINs-lab/RDED validation/main.py and argument.py, which Minimax uses for its ImageNet-1K numbers:
  * per batch: ShufflePatches(factor 2) -> RandomResizedCrop(scale (1/factor, 1)) -> flip -> normalise, then
    CutMix (Beta(1, 1), one box per batch, probability 1) on the normalised batch;
  * the teacher (eval mode, frozen) sees the mixed batch: p = softmax(teacher(x) / T), T = 20 for CutMix
    (4 for MixUp); the student minimises KL(p || softmax(student(x) / T)) averaged over the batch
    (nn.KLDivLoss(reduction="batchmean"), no T^2 factor), or the soft cross-entropy -sum p log q (loss=soft_ce);
  * AdamW (lr 1e-3, betas 0.9 / 0.999, weight decay 0.01 on weight matrices only, RDED's get_parameters),
    300 epochs, learning rate x 0.5 (1 + cos(pi e / (2 E))) per epoch (RDED's cosine: it ends at half the
    base rate), batch size by IPC (1: 10, 10: 50, 50: 100; x2 for 100 and 1,000 classes; at most IPC x C);
  * validation: the real val images resized to 256 and centre-cropped to 224 (dataset.image_size 256 with
    eval.image_size 224), every 10 epochs in the last 20% of training and at the last epoch; best top-1.
The teacher: any conf/model architecture or torchvision model, with weights from torchvision
("torchvision:<Weights enum>", 1,000 ImageNet outputs read at the class table's ImageNet ids), a local
state-dict file (RDED's released per-subset teachers, data/pretrain_models/<subset>_<arch>.pth: {"model": ...}
with one output per class in ImageFolder order, i.e. sorted wnids, and its ConvNets' layer names converted),
or null: trained once by the framework on the real train split with the hard-label protocol (hard_protocol():
IDC defaults + `hard`) and cached by its settings. Given weights are loaded and checked against the
architecture and the classes when the config is validated (Protocol.check), before any pool work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sas.evaluation.classifier import Classifier
from sas.evaluation.protocol import EvalContext, Protocol, train_on_real

__all__ = ["SoftLabelProtocol", "SoftLabelClassifier", "soft_loss", "rded_cosine", "weight_decay_groups"]

LOSSES = ("kl", "soft_ce", "hard_ce")
SCHEDULES = ("rded_cosine", "cosine", "linear", "constant")
DECAY = ("weights", "all")


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
              kind: str = "kl") -> torch.Tensor:
    """(B, C) logits of both -> the scalar loss of the student against the teacher's soft labels."""
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    p = F.softmax(teacher_logits / temperature, dim=1)
    if kind == "kl":
        return F.kl_div(log_q, p, reduction="batchmean")
    return -(p * log_q).sum(1).mean()


def rded_cosine(epoch: int, epochs: int) -> float:
    """RDED's per-epoch learning-rate factor 0.5 (1 + cos(pi e / E / 2)) for e <= E (0 beyond)."""
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs / 2)) if epoch <= epochs else 0.0


def schedule_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The per-epoch learning-rate factor: rded_cosine (RDED's quarter cosine, ends at 0.5), cosine (torch's
    CosineAnnealingLR with T_max = epochs, DD-Ranking's 'cosine': 0.5 (1 + cos(pi e / E)), ends at 0), linear,
    constant."""
    if schedule == "rded_cosine":
        return rded_cosine(epoch, epochs)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "linear":
        return max(0.0, 1.0 - epoch / epochs)
    return 1.0


def weight_decay_groups(model: nn.Module, weight_decay: float, on: str = "weights") -> list[dict]:
    """Decay on weight matrices / kernels only (names with 'weight', more than one dim), as RDED's get_parameters;
    on="all": every parameter (DD-Ranking's get_optimizer passes model.parameters())."""
    if on == "all":
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    decay, plain = [], []
    for name, p in model.named_parameters():
        (decay if "weight" in name and p.dim() > 1 else plain).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


class SoftLabelClassifier(Classifier):
    """The student of the soft-label protocol; validation, curve and logging are the IDC Classifier's."""

    def __init__(self, model: nn.Module, teacher: nn.Module | None, epochs: int, lr: float = 1e-3,
                 weight_decay: float = 0.01, betas=(0.9, 0.999), temperature: float = 20.0, loss: str = "kl",
                 schedule: str = "rded_cosine", mix: str = "cutmix", cutmix_beta: float = 1.0,
                 cutmix_prob: float = 1.0, mixup_alpha: float = 0.8, seed: int = 0, channels_last: bool = False,
                 metric_prefix: str = "", eval_from_epoch: int = 0, decay_on: str = "weights"):
        super().__init__(model, epochs=epochs, lr=lr, weight_decay=weight_decay, cutmix_beta=cutmix_beta,
                         cutmix_prob=cutmix_prob, seed=seed, channels_last=channels_last,
                         metric_prefix=metric_prefix, eval_from_epoch=eval_from_epoch)
        self.teacher = None if teacher is None else teacher.eval().requires_grad_(False)   # None: hard labels

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()                       # Lightning switches the whole module each epoch
        return self

    def _mix(self, x: torch.Tensor, y: torch.Tensor):
        """The mixed batch, the two label sets it holds and the first one's share."""
        from sas.data.augment import cutmix
        h = self.hparams
        if h.mix == "cutmix":
            return cutmix(x, y, h.cutmix_beta, h.cutmix_prob, self._rng, self._gen)
        if h.mix == "mixup":
            lam = float(self._rng.beta(h.mixup_alpha, h.mixup_alpha))
            perm = torch.randperm(x.shape[0], generator=self._gen, device=x.device)
            return lam * x + (1 - lam) * x[perm], y, y[perm], lam
        return x, y, y, 1.0

    def training_step(self, batch, batch_idx):
        x, y = batch                                                        # (B, 3, S, S), (B,)
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.hparams.seed * 7919 + 7)
        x, y_a, y_b, lam = self._mix(x, y)
        if self.hparams.loss == "hard_ce":                                  # the labels, mixed as the images
            logits = self(x)
            loss = lam * F.cross_entropy(logits, y_a) + (1 - lam) * F.cross_entropy(logits, y_b)
        else:
            with torch.no_grad():
                teacher_logits = self.teacher(x)                            # (B, C)
            loss = soft_loss(self(x), teacher_logits, self.hparams.temperature, self.hparams.loss)
        self.train_loss.update(loss.detach())
        return loss

    def configure_optimizers(self):
        h = self.hparams
        opt = torch.optim.AdamW(weight_decay_groups(self.model, h.weight_decay, h.decay_on), lr=h.lr,
                                betas=tuple(h.betas))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: schedule_factor(h.schedule, e, h.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


@dataclass
class SoftLabelProtocol(Protocol):
    lr: float = 1e-3                                # RDED adamw_lr for resnet18 / conv students
    weight_decay: float = 0.01                      # RDED adamw_weight_decay
    betas: tuple = (0.9, 0.999)
    epochs: int | None = 300                        # RDED re_epochs
    schedule: str = "rded_cosine"                   # rded_cosine | cosine | linear | constant
    decay_on: str = "weights"                       # weights (RDED's get_parameters) | all (DD-Ranking)
    batch_size_by_ipc: dict | None = field(default_factory=lambda: {1: 10, 10: 50, 50: 100})   # RDED re_batch_size
    batch_scale_by_classes: dict = field(default_factory=lambda: {100: 2, 1000: 2})
    temperature: float = 20.0                       # RDED: 20 with CutMix, 4 with MixUp
    loss: str = "kl"                                # kl (RDED) | soft_ce | hard_ce (the labels; no teacher)
    mix: str = "cutmix"                             # cutmix | mixup | none
    mixup_alpha: float = 0.8
    patch_factor: int = 2                           # ShufflePatches factor; the crop scale is (1 / factor, 1)
    augment: str = "rded"
    crop_scale: tuple = (0.5, 1.0)
    jitter: float = 0.0
    lighting: float = 0.0
    evaluations: int = 30                           # every epochs / 30 = 10 epochs ...
    eval_from: float = 0.8                          # ... in the last 20% of the epochs (and the last one)
    seed: int = 42                                  # RDED argument.py
    teacher: dict = field(default_factory=lambda: {"_target_": "sas.models.resnet.resnet", "depth": 18})
    teacher_weights: str | None = None              # torchvision:<Weights enum> | a state-dict file | null: trained
    teacher_class_order: str = "auto"               # which teacher output is which class (load_teacher)
    hard: dict = field(default_factory=dict)        # Protocol fields of the hard-label runs that go with this
                                                    # protocol: a teacher trained here, DD-Ranking's HLR
    _teacher: nn.Module | None = field(default=None, init=False, repr=False, compare=False)

    AUGMENTS = ("rded", "rrc", "none")   # rded: ShufflePatches -> RandomResizedCrop -> flip; rrc: the last two

    def __post_init__(self):
        super().__post_init__()
        for key, allowed in (("loss", LOSSES), ("schedule", SCHEDULES), ("mix", ("cutmix", "mixup", "none")),
                             ("decay_on", DECAY)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"eval.{key} must be one of {allowed}, got '{getattr(self, key)}'")
        if self.temperature <= 0:
            raise ValueError(f"eval.temperature must be > 0, got {self.temperature}")
        if self.teacher_class_order not in TEACHER_CLASS_ORDERS:
            raise ValueError(f"eval.teacher_class_order must be one of {TEACHER_CLASS_ORDERS}, got "
                             f"'{self.teacher_class_order}'")

    def batch_size_for(self, ipc: int | None, num_classes: int) -> int:
        """RDED's rule: by IPC, x2 for 100 / 1,000 classes, at most IPC x classes (else eval.batch_size)."""
        table = {int(k): int(v) for k, v in (self.batch_size_by_ipc or {}).items()}     # None: batch_size always
        if ipc is None or ipc not in table:
            return self.batch_size
        bs = table[ipc] * int({int(k): v for k, v in self.batch_scale_by_classes.items()}.get(num_classes, 1))
        return min(bs, ipc * num_classes)

    def train_augment(self):
        if self.augment == "none":
            return None
        from sas.data.augment import TrainAugment
        scale = (1 / self.patch_factor, 1.0) if self.augment == "rded" else tuple(self.crop_scale)
        base = TrainAugment(self.image_size, scale=scale, flip=self.flip, brightness=0.0,
                            contrast=0.0, saturation=0.0, lighting=0.0, mean=self.mean, std=self.std)
        return PatchShuffleAugment(base, self.patch_factor) if self.augment == "rded" else base

    def ddranking_hard(self, lr_search, mix: bool = False) -> "SoftLabelProtocol":
        """DD-Ranking's hard-label runs of this soft-label protocol: the same optimiser, schedule, epochs and
        per-image augmentation, cross-entropy on the labels (no teacher), the batch not mixed unless `mix`
        (use_aug_for_hard), the best of a learning-rate search (_hyper_param_search_for_hard_label)."""
        return self.replaced(loss="hard_ce", mix=self.mix if mix else "none", lr_search=tuple(lr_search))

    def hard_protocol(self) -> Protocol:
        """The hard-label IDC protocol (Protocol defaults) at this protocol's image size, normalisation,
        devices and repeats, with the fields of `hard` on top."""
        shared = ("image_size", "mean", "std", "progress", "accelerator", "devices", "strategy", "precision",
                  "repeats", "tf32", "eval_batch_size")
        return Protocol(**{k: getattr(self, k) for k in shared}, **self.hard)

    def check(self, table) -> None:
        """Load given teacher weights now (they exist, they fit the architecture and the classes), before any
        pool work; a teacher trained here is trained when evaluation first needs it."""
        if self.teacher_weights and self._teacher is None and self.loss != "hard_ce":
            self._teacher = load_teacher(self, table)

    def prepare(self, context: EvalContext) -> None:
        if self._teacher is None and self.loss != "hard_ce":
            self._teacher = (load_teacher(self, context.real_val().classes) if self.teacher_weights else
                             train_on_real(self.teacher, self.hard_protocol(), context)[0].eval())

    def build_module(self, net, epochs: int, seed: int, metric_prefix: str = ""):
        if self._teacher is None and self.loss != "hard_ce":
            raise RuntimeError("the soft-label protocol's teacher is not loaded: call prepare(context) first")
        return SoftLabelClassifier(net, self._teacher, epochs, lr=self.lr, weight_decay=self.weight_decay,
                                   betas=tuple(self.betas), temperature=self.temperature, loss=self.loss,
                                   schedule=self.schedule, mix=self.mix, cutmix_beta=self.cutmix_beta,
                                   cutmix_prob=self.cutmix_prob, mixup_alpha=self.mixup_alpha, seed=seed,
                                   channels_last=self.channels_last, metric_prefix=metric_prefix,
                                   eval_from_epoch=int(self.eval_from * epochs), decay_on=self.decay_on)


class PatchShuffleAugment(nn.Module):
    """ShufflePatches on the uint8 batch, then the crop / flip / normalise chain."""

    def __init__(self, base: nn.Module, factor: int):
        super().__init__()
        self.base, self.factor = base, factor

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        from sas.data.patches import shuffle_patches
        return self.base(shuffle_patches(images, self.factor, generator), generator)


TEACHER_CLASS_ORDERS = ("auto", "imagenet", "folders", "table")


class ClassLogits(nn.Module):
    """A classifier's logits at chosen outputs, in the class table's order: (B, K) -> (B, C)."""

    def __init__(self, net: nn.Module, index: list[int]):
        super().__init__()
        self.net = net
        self.register_buffer("index", torch.tensor(index, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).index_select(1, self.index)


def _teacher_state(weights: str) -> dict:
    """The state dict of `teacher_weights`: a torchvision weights enum (from TORCH_HOME, downloaded when missing)
    or a file (a plain state dict, or RDED's / a training script's {"model": ...} / {"state_dict": ...})."""
    if weights.startswith("torchvision:"):
        import torchvision
        name = weights.split(":", 1)[1]
        try:
            enum = torchvision.models.get_weight(name)
        except (ValueError, KeyError, AttributeError):
            raise ValueError(f"eval.teacher_weights: torchvision has no weights '{name}' (e.g. "
                             "ResNet18_Weights.IMAGENET1K_V1)") from None
        where = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
        try:
            return enum.get_state_dict(progress=True, check_hash=True)
        except OSError as err:                                # no file and no network (URLError is an OSError)
            raise ValueError(f"eval.teacher_weights {weights}: {where} is missing and cannot be downloaded "
                             f"({err}); fetch {enum.url} into {where.parent} (README: 'Weights on offline compute "
                             "nodes')") from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ValueError(f"eval.teacher_weights: no such file: {path} (or torchvision:<Weights enum>)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"eval.teacher_weights {path}: not a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}          # saved from DataParallel / DDP
    return rded_convnet_keys(state)


def rded_convnet_keys(state: dict) -> dict:
    """RDED's ConvNet (synthesize/models.py: layers.conv.<d>, layers.norm.<d>, classifier) under the names of
    sas.models.convnet.ConvNet (features.<4d> conv, features.<4d+1> norm, classifier): the same layers in the
    same order (conv -> norm -> ReLU -> pool). Other state dicts are returned as they are."""
    import re
    if not any(k.startswith("layers.conv.") for k in state):
        return state
    out = {}
    for k, v in state.items():
        m = re.match(r"layers\.(conv|norm)\.(\d+)\.(.+)", k)
        out[f"features.{4 * int(m[2]) + (m[1] == 'norm')}.{m[3]}" if m else k] = v
    return out


def teacher_class_index(order: str, outputs: int, table) -> list[int] | None:
    """Which teacher output is each class of the table (None: the outputs are the table's classes in order).
    auto: 1,000 outputs are ImageNet-1K's (taken at the table's ImageNet ids), as many outputs as classes are in
    ImageFolder order (`folders`: the class folders sorted by name, as RDED's per-subset teachers were trained)."""
    n = len(table)
    if order == "auto":
        order = "imagenet" if outputs == 1000 and n != 1000 else "folders" if outputs == n else "?"
    if order == "imagenet":
        if outputs != 1000 or any(i is None for i in table.imagenet_ids):
            raise ValueError(f"eval.teacher_class_order=imagenet needs a 1,000-output teacher and a dataset with "
                             f"ImageNet ids; the teacher has {outputs} outputs, dataset {table.name} "
                             f"{'has' if all(i is not None for i in table.imagenet_ids) else 'has no'} ImageNet ids")
        index = list(table.imagenet_ids)
    elif order in ("folders", "table"):
        if outputs != n:
            raise ValueError(f"the teacher has {outputs} outputs but dataset {table.name} has {n} classes")
        index = [sorted(table.folders).index(f) for f in table.folders] if order == "folders" else list(range(n))
    else:
        raise ValueError(f"the teacher has {outputs} outputs: neither ImageNet-1K's 1,000 nor the {n} classes of "
                         f"{table.name}")
    return None if index == list(range(outputs)) else index


def load_teacher(protocol: SoftLabelProtocol, table) -> nn.Module:
    """The teacher of `teacher_weights`, eval mode, its logits in the table's class order: ImageNet-1K weights
    give the logits at the table's ImageNet ids; a per-subset file (RDED's) its outputs in ImageFolder order.
    Every failure (unknown weights, missing file, no network, shapes that do not fit) is a ValueError naming
    the setting."""
    from sas.models import build_model

    state = _teacher_state(str(protocol.teacher_weights))
    net = build_model(protocol.teacher, num_classes=len(table), image_size=protocol.image_size)
    head = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)][-1]    # the classifier layer
    if f"{head}.weight" not in state:
        raise ValueError(f"eval.teacher_weights {protocol.teacher_weights}: no '{head}.weight' for eval.teacher "
                         f"{protocol.teacher.get('_target_')} (its keys start {sorted(state)[:3]})")
    outputs = state[f"{head}.weight"].shape[0]
    index = teacher_class_index(protocol.teacher_class_order, outputs, table)
    if outputs != len(table):
        net = build_model(protocol.teacher, num_classes=outputs, image_size=protocol.image_size)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"eval.teacher_weights {protocol.teacher_weights} does not fit eval.teacher "
                         f"{dict(protocol.teacher)}: {str(err).splitlines()[0][:300]}") from None
    return (net if index is None else ClassLogits(net, index)).eval()
