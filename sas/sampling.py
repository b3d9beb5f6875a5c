"""Selecting a distilled set from an image pool: SAS and every baseline of the paper.

    from sas.sampling import sas_select, SAS
    idx = sas_select(image_features, labels, prototypes, ipc=10)  # (C*ipc,) int64, ascending
    sel = SAS(ipc=10)(image_features, labels, prototypes)         # Selection: indices + per-image record

Inputs: image_features (N, d), labels (N,) integers in [0, C), prototypes
(C, d): one per class, text ("A photo of a {}") or visual (mean real image
embedding); torch tensors or numpy arrays, any device; rows are L2-normalised
inside and the math keeps the input's float dtype. Every function returns
exactly ipc pool indices per class, sorted ascending, on the features' device.

The rules (they decide results):
  SAS       per class, candidates = top k = min(n_c, max(ipc, ceil(r * n_c))) by
            margin (descending, ties to the lower index); walk them in that order
            adding each to S; whenever |S| > ipc remove the member with the lowest
            mean angular distance to the others. Means within `tie_tolerance`
            (1e-9 in float64, 1e-5 in float32) of the lowest count as tied: of
            those, the one that entered S last leaves.
  mixed     margin + lam * z(static diversity) * std(margin), per class
            (population statistics; a class with all-equal diversity gets 0);
            top ipc.
  kcenter   greedy farthest point, Euclidean on the raw features (or normalised
            rows), first centre drawn at random per class with a seed (or the
            member nearest the class mean).
  herding   greedily add the member that brings the selected mean closest to the
            class mean.
            (kcenter, herding: squared distances within the tie tolerance of the
            best count as tied.)
  random    seeded uniform subset per class.
  ablation  paper Table 6: score = enabled ones of relevance and separation; with
            use_div, SAS's two stages on that score (no score: stage 2 over the
            whole pool in seeded random order); without, top ipc by the score
            (no score: random).
All ties go to the lower pool index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor

from sas.inputs import (Prepared, SelectionInputError, check_int, check_lam, check_ratio,
                         prepare, with_extras)
from sas.scores import (ImageScores, prepared_relevance_separation, _scores, prepared_static_diversity,
                        angular_blocks, class_blocks, class_order)

__all__ = [
    "Selection", "Sampler", "SAS", "MixedScore", "KCenter", "Herding", "Random", "Ablation",
    "SAMPLERS", "build_sampler", "sas_select", "mixed_select", "kcenter_select",
    "herding_select", "random_select", "ablation_select", "candidate_counts", "diversity_walk",
    "SelectionInputError",
]


# ----------------------------------------------------------------------------- pieces

def candidate_counts(counts: Tensor, ipc: int, candidate_ratio: float) -> Tensor:
    """k_c = min(n_c, max(ipc, ceil(r * n_c))) per class -> (C,) int64.

    The product is rounded to 9 decimals before the ceiling, so 0.1 * 30 gives 3,
    not 4 (0.1 has no exact binary form).
    """
    k = [min(n, max(ipc, math.ceil(round(candidate_ratio * n, 9)))) for n in counts.tolist()]
    return torch.tensor(k, dtype=torch.int64, device=counts.device)


def _leading(order: Tensor, counts: Tensor, take: Tensor) -> Tensor:
    """Mask (N,) of the first take[c] entries of each class in `order` (see `class_order`)."""
    offsets = torch.cumsum(counts, 0) - counts                                     # (C,)
    rank = torch.arange(order.numel(), device=order.device) - offsets.repeat_interleave(counts)
    mask = torch.zeros(order.numel(), dtype=torch.bool, device=order.device)
    mask[order[rank < take.repeat_interleave(counts)]] = True
    return mask


def diversity_walk(dist: Tensor, ipc: int, tol: float) -> Tensor:
    """Stage 2 of SAS on a batch of classes -> (B, k) bool, True for the kept members.

    dist: (B, k, k) angular distances among each class's candidates in visiting
          order, zero diagonal; member i's mean reads column i (dist[:, j, i]),
          so that every update below reads a contiguous row.
    Candidates enter S in order; while |S| > ipc the member with the lowest mean
    distance to the other members leaves (ties within tol: the latest to enter).
    Every candidate keeps its running sum of distances to the current S, so a step
    costs O(k) and the whole walk O(k^2) per class.
    """
    B, k, _ = dist.shape
    member = torch.zeros(B, k, dtype=torch.bool, device=dist.device)
    member[:, :ipc] = True
    sums = dist[:, :ipc, :].sum(1)                                      # (B, k) sum of d(S, i)
    entry = torch.arange(k, device=dist.device).expand(B, k)            # entry order = visiting order
    rows = torch.arange(B, device=dist.device)
    for t in range(ipc, k):
        member[:, t] = True                                             # newcomer t joins S
        sums += dist[:, t]                                              # everyone gains d(t, i)
        mean = (sums / ipc).masked_fill_(~member, torch.inf)            # |S| - 1 = ipc
        tied = mean <= mean.amin(dim=1, keepdim=True) + tol
        out = torch.where(tied, entry, -1).argmax(dim=1)                # latest to enter among the tied
        member[rows, out] = False
        sums -= dist[rows, out]                                         # everyone loses d(out, i)
    return member


def _walk(p: Prepared, order: Tensor, take: Tensor, ipc: int) -> Tensor:
    """Run `diversity_walk` over the first take[c] of each class in `order` -> (N,) bool."""
    selected = torch.zeros(p.n, dtype=torch.bool, device=p.device)
    for idx, dist in angular_blocks(p, order, take):                       # (B, k), (B, k, k)
        selected[idx[diversity_walk(dist, ipc, p.tol)]] = True
    return selected


def _first_best(x: Tensor, tol: float, lowest: bool) -> Tensor:
    """(B, n) -> (B,) the lowest column index whose value is within tol of the row's min (or max).

    Squared distances computed by expansion carry rounding error, so values within
    the tie tolerance of the best are ties, and ties go to the lower pool index.
    """
    best = x.amin(1, keepdim=True) if lowest else x.amax(1, keepdim=True)
    near = x <= best + tol if lowest else x >= best - tol
    return near.int().argmax(1)                                             # first True


def _random_keys(n: int, seed: int, device) -> Tensor:
    """A seeded random permutation (N,), drawn on the CPU so every device gets the same one."""
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=-(2 ** 63)))
    return torch.randperm(n, generator=gen).to(device)


def class_stats(x: Tensor, labels: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class population mean, std and whether all values are equal -> three (C,)."""
    C = counts.numel()
    n = counts.to(x.dtype)
    mean = torch.zeros(C, dtype=x.dtype, device=x.device).index_add_(0, labels, x) / n
    sq = (x - mean[labels]) ** 2
    std = (torch.zeros_like(mean).index_add_(0, labels, sq) / n).sqrt()
    hi = torch.full_like(mean, -torch.inf).scatter_reduce_(0, labels, x, "amax")
    lo = torch.full_like(mean, torch.inf).scatter_reduce_(0, labels, x, "amin")
    return mean, std, hi == lo


# ----------------------------------------------------------------------------- Selection

@dataclass(frozen=True)
class Selection:
    """What a sampler chose, with the per-image record for manifests and plots.

    indices:   (K,) int64 selected pool indices, ascending (K = C * ipc)
    selected:  (N,) bool
    candidate: (N,) bool, the stage-1 candidate set (the whole pool for one-stage samplers)
    scores:    per-image relevance / separation / margin / static diversity, when
               class prototypes were given (and there are >= 2 classes)
    """

    indices: Tensor
    selected: Tensor
    candidate: Tensor
    scores: ImageScores | None = None

    def record(self) -> dict[str, Tensor]:
        """Per-image columns, each (N,) in pool order."""
        cols = {} if self.scores is None else dict(self.scores.as_dict())
        cols.update(candidate=self.candidate, selected=self.selected)
        return cols


# ----------------------------------------------------------------------------- samplers

@dataclass
class Sampler:
    """Base of every sampler: the fields each sampler config has. A new selection rule is a subclass with
    its own fields (dataclass), a `name`, `uses_prototypes` / `uses_separation` when it needs prototypes, and one
    method, `choose(p)`, built from the hooks below; plus a YAML file whose _target_ is the class
    (README "Writing a selection rule"; experiments/samplers/coverage.py is a worked example). Every sampler
    here is written exactly that way.

    ipc:       images per class to select
    pool_mult: pool size per class as a multiple of ipc (read by the pipeline
               that builds the pool; the sampler itself takes any pool with
               at least ipc images per class); None: every image of the pool
               (pool=real: the whole train split, e.g. the paper's K-Center)
    """

    ipc: int = 10
    pool_mult: int | None = 4

    name: ClassVar[str] = ""
    uses_prototypes: ClassVar[bool] = False        # needs class prototypes
    uses_separation: ClassVar[bool] = False  # needs >= 2 classes
    needs: ClassVar[tuple] = ()              # extra inputs by name (sas.inputs.EXTRA_INPUTS), in p.extras

    def __post_init__(self):
        self.ipc = check_int("ipc", self.ipc)
        if self.pool_mult is not None:                         # None: every image of the (real) pool
            self.pool_mult = check_int("pool_mult", self.pool_mult)

    def select(self, image_features, labels, prototypes=None, *, num_classes: int | None = None,
               record: bool = True, extras: dict | None = None) -> Selection:
        """Choose ipc pool images per class. record=False skips the per-image scores; extras: the inputs the
        sampler `needs` beyond features, labels and prototypes (sas.inputs.EXTRA_INPUTS)."""
        if self.uses_prototypes and prototypes is None:
            raise SelectionInputError(f"sampler '{self.name}' needs prototypes (one prototype per class)")
        p = prepare(image_features, labels, prototypes, num_classes=num_classes, ipc=self.ipc,
                    need_separation=self.uses_separation)
        if self.needs:
            p = with_extras(p, extras, self.needs)
        selected, candidate = self.choose(p)
        scores = _scores(p) if record and p.t is not None and p.num_classes >= 2 else None
        return Selection(torch.nonzero(selected).flatten(), selected, candidate, scores)

    __call__ = select

    # -------------------------------------------------------------- the extension API (a new rule writes choose)
    def choose(self, p: Prepared) -> tuple[Tensor, Tensor]:
        """The rule: -> (selected (N,) bool with exactly ipc per class, candidate (N,) bool: the stage-1 set,
        everyone() for one-stage rules). p: the checked inputs, p.n images, p.labels (N,), p.counts (C,),
        p.num_classes, p.unit(idx) unit-norm features of pool rows idx, p.t (C, d) unit prototypes or None,
        p.tol the tie tolerance of the dtype; prepared_relevance_separation(p) / prepared_static_diversity(p)
        (sas.scores) give the paper's per-image scores."""
        raise NotImplementedError

    def everyone(self, p: Prepared) -> Tensor:
        """(N,) all True: the candidate set of a one-stage rule."""
        return torch.ones(p.n, dtype=torch.bool, device=p.device)

    def top(self, p: Prepared, score: Tensor) -> Tensor:
        """(N,) bool: the ipc highest-scoring images of each class (ties to the lower index)."""
        return _leading(class_order(score, p.labels), p.counts, torch.full_like(p.counts, self.ipc))

    def two_stage(self, p: Prepared, score: Tensor, candidate_ratio: float) -> tuple[Tensor, Tensor]:
        """SAS's two stages on any score: the top candidate_ratio of each class by score, then the diversity
        walk -> (selected, candidate)."""
        order = class_order(score, p.labels)
        take = candidate_counts(p.counts, self.ipc, candidate_ratio)
        return _walk(p, order, take, self.ipc), _leading(order, p.counts, take)

    def walk(self, p: Prepared, order: Tensor, take: Tensor) -> Tensor:
        """The diversity walk over the first take[c] images of each class in `order` (a class-grouped
        permutation, e.g. class_order(score, p.labels)) -> selected (N,) bool."""
        return _walk(p, order, take, self.ipc)

    @staticmethod
    def random_keys(p: Prepared, seed: int) -> Tensor:
        """(N,) seeded uniform keys on the pool's device: a random order that needs no score."""
        return _random_keys(p.n, seed, p.device)

    def config(self) -> dict:
        """The sampler's settings, for logs and manifests."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass
class SAS(Sampler):
    """Semantic-aware sampling: margin filter, then diversity-aware walk (paper Sec. 3.2.2)."""

    candidate_ratio: float = 0.5
    name: ClassVar[str] = "sas"
    uses_prototypes: ClassVar[bool] = True
    uses_separation: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        self.candidate_ratio = check_ratio(self.candidate_ratio)

    def choose(self, p):
        rel, sep = prepared_relevance_separation(p)
        return self.two_stage(p, rel + sep, self.candidate_ratio)


@dataclass
class MixedScore(Sampler):
    """One-stage ranking by margin + lam * normalised static diversity (paper Eq. 9, Table 5)."""

    lam: float = 0.1
    name: ClassVar[str] = "mixed"
    uses_prototypes: ClassVar[bool] = True
    uses_separation: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        self.lam = check_lam(self.lam)

    def choose(self, p):
        rel, sep = prepared_relevance_separation(p)
        margin = rel + sep                                                  # (N,)
        div = prepared_static_diversity(p)                                          # (N,)
        d_mean, d_std, d_flat = class_stats(div, p.labels, p.counts)       # (C,) each
        _, m_std, _ = class_stats(margin, p.labels, p.counts)
        z = torch.where(d_flat[p.labels], 0.0, (div - d_mean[p.labels]) / d_std[p.labels])
        return self.top(p, margin + self.lam * z * m_std[p.labels]), self.everyone(p)


@dataclass
class KCenter(Sampler):
    """Greedy k-center (farthest point) per class [Sener & Savarese].

    features: raw (Euclidean on the features as given: Sener & Savarese's and DeepCore's k-center greedy on
              penultimate-layer features) | normalised (on unit rows);
    start:    random (the first centre drawn uniformly per class with `seed`, as both originals) | mean (the
              member nearest the class mean: deterministic without a seed).
    """

    features: str = "raw"
    start: str = "random"
    seed: int = 0
    name: ClassVar[str] = "kcenter"

    def __post_init__(self):
        super().__post_init__()
        if self.features not in ("raw", "normalised"):
            raise SelectionInputError(f"kcenter features must be raw or normalised, got {self.features!r}")
        if self.start not in ("random", "mean"):
            raise SelectionInputError(f"kcenter start must be random or mean, got {self.start!r}")
        self.seed = check_int("seed", self.seed, minimum=-(2 ** 63))

    def choose(self, p):
        selected = torch.zeros(p.n, dtype=torch.bool, device=p.device)
        order = torch.sort(p.labels, stable=True).indices
        keys = self.random_keys(p, self.seed) if self.start == "random" else None     # (N,) a random order
        for _, idx in class_blocks(order, p.counts, p.counts, p.dim):
            f = p.unit(idx) if self.features == "normalised" else p.x[idx]            # (B, n, d)
            rows = torch.arange(f.shape[0], device=f.device)
            sq = (f * f).sum(-1)                                            # (B, n)

            def sqdist(c):  # (B, d) -> (B, n) squared distances to c
                return sq + (c * c).sum(-1, keepdim=True) - 2 * torch.bmm(f, c[:, :, None])[..., 0]

            chosen = torch.zeros_like(sq, dtype=torch.bool)
            if keys is None:
                nxt = _first_best(sqdist(f.mean(1)), p.tol, lowest=True)    # nearest the class mean
            else:
                nxt = keys[idx].argmin(1)                                    # the class's first in a seeded order
            nearest = torch.full_like(sq, torch.inf)
            for _ in range(self.ipc):
                chosen[rows, nxt] = True
                nearest = torch.minimum(nearest, sqdist(f[rows, nxt]))
                nxt = _first_best(nearest.masked_fill(chosen, -torch.inf), p.tol, lowest=False)  # farthest
            selected[idx[chosen]] = True
        return selected, self.everyone(p)


@dataclass
class Herding(Sampler):
    """Greedy herding per class: keep the selected mean closest to the class mean [Welling]."""

    name: ClassVar[str] = "herding"

    def choose(self, p):
        selected = torch.zeros(p.n, dtype=torch.bool, device=p.device)
        order = torch.sort(p.labels, stable=True).indices
        for _, idx in class_blocks(order, p.counts, p.counts, p.dim):
            f = p.unit(idx)                                                    # (B, n, d)
            rows = torch.arange(f.shape[0], device=f.device)
            mu = f.mean(1)                                                  # (B, d)
            sq = (f * f).sum(-1)                                            # (B, n)
            total = torch.zeros_like(mu)                                    # sum of the selected
            chosen = torch.zeros_like(sq, dtype=torch.bool)
            for t in range(self.ipc):
                # ||(total + x) / (t+1) - mu||^2 (t+1)^2 = |x|^2 + 2 x.(total - (t+1) mu) + const
                crit = sq + 2 * torch.bmm(f, (total - (t + 1) * mu)[:, :, None])[..., 0]
                nxt = _first_best(crit.masked_fill(chosen, torch.inf), p.tol, lowest=True)
                chosen[rows, nxt] = True
                total += f[rows, nxt]
            selected[idx[chosen]] = True
        return selected, self.everyone(p)


@dataclass
class Random(Sampler):
    """Seeded uniform random subset per class."""

    seed: int = 0
    name: ClassVar[str] = "random"

    def choose(self, p):
        return self.top(p, self.random_keys(p, self.seed)), self.everyone(p)


@dataclass
class Ablation(Sampler):
    """Paper Table 6: switch relevance, separation and the diversity walk on and off."""

    use_rel: bool = True
    use_sep: bool = True
    use_div: bool = True
    candidate_ratio: float = 0.5
    seed: int = 0
    name: ClassVar[str] = "ablation"

    def __post_init__(self):
        super().__post_init__()
        self.candidate_ratio = check_ratio(self.candidate_ratio)
        for flag in ("use_rel", "use_sep", "use_div"):
            if not isinstance(getattr(self, flag), bool):
                raise SelectionInputError(f"{flag} must be true or false, got {getattr(self, flag)!r}")

    @property
    def uses_prototypes(self) -> bool:  # type: ignore[override]
        return self.use_rel or self.use_sep

    @property
    def uses_separation(self) -> bool:  # type: ignore[override]
        return self.use_sep

    def choose(self, p):
        if self.uses_prototypes:
            rel, sep = prepared_relevance_separation(p, need_separation=self.use_sep)
            score = (rel if self.use_rel else 0) + (sep if self.use_sep else 0)
            if self.use_div:
                return self.two_stage(p, score, self.candidate_ratio)
            return self.top(p, score), self.everyone(p)
        keys = self.random_keys(p, self.seed)
        if self.use_div:
            return self.walk(p, class_order(keys, p.labels), p.counts), self.everyone(p)
        return self.top(p, keys), self.everyone(p)


SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls for cls in (SAS, MixedScore, KCenter, Herding, Random, Ablation)
}


def build_sampler(name: str, **options) -> Sampler:
    """A sampler by its registry name, e.g. build_sampler("sas", ipc=10)."""
    if name not in SAMPLERS:
        raise SelectionInputError(f"unknown sampler '{name}'; choose from {sorted(SAMPLERS)}")
    return SAMPLERS[name](**options)


# ----------------------------------------------------------------------------- functions

def sas_select(image_features, labels, prototypes, ipc: int, candidate_ratio: float = 0.5) -> Tensor:
    """SAS selection -> (C*ipc,) int64 pool indices, ascending."""
    return SAS(ipc=ipc, candidate_ratio=candidate_ratio).select(
        image_features, labels, prototypes, record=False).indices


def mixed_select(image_features, labels, prototypes, ipc: int, lam: float) -> Tensor:
    """Mixed-score selection (paper Eq. 9) -> (C*ipc,) int64 pool indices, ascending."""
    return MixedScore(ipc=ipc, lam=lam).select(image_features, labels, prototypes, record=False).indices


def kcenter_select(image_features, labels, ipc: int, num_classes: int | None = None, features: str = "raw",
                   start: str = "random", seed: int = 0) -> Tensor:
    """K-center selection -> (C*ipc,) int64 pool indices, ascending."""
    return KCenter(ipc=ipc, features=features, start=start, seed=seed).select(
        image_features, labels, num_classes=num_classes, record=False).indices


def herding_select(image_features, labels, ipc: int, num_classes: int | None = None) -> Tensor:
    """Herding selection -> (C*ipc,) int64 pool indices, ascending."""
    return Herding(ipc=ipc).select(image_features, labels, num_classes=num_classes, record=False).indices


def random_select(labels, ipc: int, seed: int, num_classes: int | None = None) -> Tensor:
    """Seeded random selection -> (C*ipc,) int64 pool indices, ascending (labels' device)."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() == 0:
        raise SelectionInputError(f"labels must be a non-empty 1-D array, got shape {tuple(labels.shape)}")
    # Features play no part; a constant column lets the shared input checks run.
    stand_in = torch.ones(labels.shape[0], 1, device=labels.device)
    return Random(ipc=ipc, seed=seed).select(stand_in, labels, num_classes=num_classes, record=False).indices


def ablation_select(image_features, labels, prototypes, ipc: int, use_rel: bool, use_sep: bool,
                    use_div: bool, candidate_ratio: float = 0.5, seed: int = 0) -> Tensor:
    """Ablation of paper Table 6 -> (C*ipc,) int64 pool indices, ascending."""
    sampler = Ablation(ipc=ipc, use_rel=use_rel, use_sep=use_sep, use_div=use_div,
                       candidate_ratio=candidate_ratio, seed=seed)
    return sampler.select(image_features, labels, prototypes, record=False).indices
