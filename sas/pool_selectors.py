"""The field's other pool selectors, as samplers on the same pool and protocols as SAS (torch only).

    sel = DifficultyGuided(ipc=10)(feats, labels, protos, extras={"difficulty": d, "real_difficulty": rd,
                                                                  "real_labels": ry})
    sel = SubgroupSelection(ipc=10, pool_mult=5)(feats, labels, protos, extras={"real_centroids": r})

DifficultyGuided: difficulty-guided sampling (Li et al., "Task-Specific Generative Dataset Distillation with
Difficulty-Guided Sampling", ICCV-W 2025; SumomoTaku/DiffGuideSamp, sampling.py and score_generate.py). An
image's difficulty is 1 - the probability a classifier gives its class (the pipeline trains the classifier on
the real train split: sas.encoders.extras). Per class:
  1. thresholds (b, t): every pair in 0..T-1 (T = threshold_search, default ipc // 2 as the original's
     get_threshold(size=ipc), at least 1); the pool's difficulties d are log-transformed with each pair
     (below); the pair minimising  w KL(h(d) || h(d')) + (1 - w) KL(uniform || h(d'))  wins (h: the
     `bins`-bin histogram on [0, 1], normalised; KL in bits, infinite where h(d') has an empty bin that the
     other side fills; the first pair in (b, t) order on ties);
  2. the real train images' difficulties, log-transformed with the same (b, t) (indices into their own sorted
     values), give the target histogram, scaled to ipc images by largest remainders (ties to the lower bin);
  3. per bin, that many of the pool's transformed difficulties are drawn at random (seeded); a bin holding
     fewer gives all it has; the rest of the ipc are drawn at random from the images not taken.
  log transform with (b, t) over values v: bottom = sorted(v)[b] (a zero bottom becomes `floor`), top =
  sorted(v)[-(t + 1)]; v is raised to bottom, then cut to top; v' = log(v / bottom) / log(top / bottom),
  values below `floor` become `floor`; a class whose top equals its bottom gives nan (no bin), as the original.
  Bins: value x is in bin floor(x * bins), x = 1 in the last; x outside [0, 1] or nan in none.
  Differences from the original: draws are seeded (pandas sample is not); at IPC 1 the original's threshold
  search is empty and fails, here (0, 0) is used; a real class smaller than a threshold index uses its last.

SubgroupSelection (S3; Westlake-AGI-Lab/IMS3, centroid.py): per class, G subgroups of ipc images (the class's
pool images in pool order, consecutive: group g holds images g*ipc .. (g+1)*ipc - 1); a subgroup's centroid is
the normalised mean of its normalised embeddings; one subgroup per class maximises
    L = alpha * sum_i -log(d(c_i, r_i) + eps) + beta * sum_{i<j} log(d(c_i, c_j) + eps),  d = 1 - cosine,
r_i the class's real centroid (the real train split's mean embedding: visual prototypes), by coordinate ascent:
start from each class's subgroup closest to its real centroid (lowest index on ties), then up to `iterations`
sweeps over the classes in order, each moving class i to the subgroup of highest L given the others (only a
strict improvement moves it, the lowest index among equals; values within the tie tolerance are equal),
stopping after a sweep without a move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from sas.inputs import Prepared, SelectionInputError, check_int
from sas.sampling import Sampler

__all__ = ["DifficultyGuided", "SubgroupSelection", "log_transform", "bin_index", "kl_bits", "largest_remainder"]


def bin_index(x: Tensor, bins: int) -> Tensor:
    """The histogram bin of each value on [0, 1] (x = 1 in the last), -1 for values outside or nan."""
    idx = torch.floor(x * bins).clamp(max=bins - 1)
    inside = (x >= 0) & (x <= 1)                       # False for nan
    return torch.where(inside, idx, torch.full_like(idx, -1)).long()


def histogram(x: Tensor, bins: int) -> Tensor:
    """(..., n) values -> (..., bins) counts (values outside [0, 1] and nan not counted)."""
    idx = bin_index(x, bins)
    counts = torch.zeros(*x.shape[:-1], bins + 1, dtype=x.dtype, device=x.device)
    counts.scatter_add_(-1, torch.where(idx < 0, bins, idx), torch.ones_like(x))
    return counts[..., :bins]


def kl_bits(p: Tensor, q: Tensor) -> Tensor:
    """KL(p || q) in bits over the last axis, each side normalised to sum 1 (scipy.stats.entropy(p, q, base=2));
    inf where p > 0 and q = 0, nan when a side sums to 0."""
    p = p / p.sum(-1, keepdim=True)
    q = q / q.sum(-1, keepdim=True)
    terms = torch.where(p > 0, p * torch.log2(p / q), torch.zeros_like(p))
    return terms.sum(-1)


def log_transform(values: Tensor, b: Tensor, t: Tensor, floor: float) -> Tensor:
    """The log transform of DiffGuideSamp (module docstring). values (n,) of one class; b, t (...) threshold
    indices -> (..., n)."""
    s = torch.sort(values).values
    n = s.numel()
    bottom = s[b.clamp(max=n - 1)].unsqueeze(-1)                              # (..., 1)
    top = s[(n - 1 - t).clamp(min=0)].unsqueeze(-1)
    bottom = torch.where(bottom == 0, torch.full_like(bottom, floor), bottom)
    v = torch.minimum(torch.maximum(values.expand(*bottom.shape[:-1], n), bottom), top)
    out = torch.log(v / bottom) / torch.log(top / bottom)
    return torch.where(out < floor, torch.full_like(out, floor), out)         # nan stays nan


def largest_remainder(counts: Tensor, total: int) -> Tensor:
    """counts scaled to sum to `total` (floors, then +1 to the largest remainders; ties to the lower bin);
    all zero when counts sum to 0."""
    if float(counts.sum()) <= 0:
        return torch.zeros_like(counts, dtype=torch.long)
    scaled = counts * (total / counts.sum())
    target = torch.floor(scaled).long()
    short = total - int(target.sum())
    order = torch.sort(-(scaled - target), stable=True).indices
    target[order[:short]] += 1
    return target


@dataclass
class DifficultyGuided(Sampler):
    """Difficulty-guided sampling (module docstring): the pool's difficulty histogram shaped like the real
    data's, after a log transform fitted per class."""

    seed: int = 0
    bins: int = 10
    kl_weight: float = 0.5                  # w: the original's l_value
    threshold_search: int | None = None     # T: thresholds 0..T-1 at each end; None: ipc // 2 (at least 1)
    floor: float = 1e-4                     # the original's `inf`: the smallest transformed value
    classifier: dict | None = None          # the classifier's model config (trained on the real train split by
                                            # the pipeline, cached); None: the run's evaluation model
    classifier_epochs: int | None = None    # its training epochs under the run's hard-label protocol; None:
                                            # the protocol's own for a whole real split
    name: ClassVar[str] = "diffguided"
    needs: ClassVar[tuple] = ("difficulty", "real_difficulty", "real_labels")

    def __post_init__(self):
        super().__post_init__()
        self.bins = check_int("bins", self.bins)
        if self.threshold_search is not None:
            self.threshold_search = check_int("threshold_search", self.threshold_search)
        if self.classifier_epochs is not None:
            self.classifier_epochs = check_int("classifier_epochs", self.classifier_epochs)
        if not 0 <= float(self.kl_weight) <= 1:
            raise SelectionInputError(f"kl_weight must be in [0, 1], got {self.kl_weight!r}")
        if not 0 < float(self.floor) < 1:
            raise SelectionInputError(f"floor must be in (0, 1), got {self.floor!r}")

    def thresholds(self, d: Tensor) -> tuple[int, int]:
        """(b, t) of one class's pool difficulties d (n,) (step 1)."""
        T = self.threshold_search or max(1, self.ipc // 2)
        grid = torch.arange(T, device=d.device)
        b, t = torch.meshgrid(grid, grid, indexing="ij")                               # (T, T)
        h_log = histogram(log_transform(d, b, t, self.floor), self.bins)               # (T, T, bins)
        h_raw = histogram(d, self.bins).expand_as(h_log)
        even = torch.ones_like(h_log)
        w = float(self.kl_weight)
        value = w * kl_bits(h_raw, h_log) + (1 - w) * kl_bits(even, h_log)             # (T, T)
        value = torch.nan_to_num(value, nan=math.inf)
        first = int(torch.nonzero(value.flatten() == value.min()).flatten()[0])        # row-major: b, then t
        return first // T, first % T

    def choose(self, p: Prepared) -> tuple[Tensor, Tensor]:
        d_all, real, real_y = p.extras["difficulty"], p.extras["real_difficulty"], p.extras["real_labels"]
        keys = self.random_keys(p, self.seed)                                          # (N,) a seeded order
        selected = torch.zeros(p.n, dtype=torch.bool, device=p.device)
        for c in range(p.num_classes):
            members = torch.nonzero(p.labels == c).flatten()                          # pool order
            d = d_all[members]
            b, t = self.thresholds(d)
            r = real[real_y == c]
            if r.numel():
                rb, rt = torch.tensor(min(b, r.numel() - 1)), torch.tensor(min(t, r.numel() - 1))
                target = largest_remainder(histogram(log_transform(r, rb, rt, self.floor), self.bins), self.ipc)
            else:
                target = torch.zeros(self.bins, dtype=torch.long)
            where = bin_index(log_transform(d, torch.tensor(b), torch.tensor(t), self.floor), self.bins)
            shuffle = torch.argsort(keys[members])                                      # a random order
            order, where_in_order = members[shuffle], where[shuffle]
            taken = torch.zeros(order.numel(), dtype=torch.bool, device=p.device)
            for k in range(self.bins):
                inside = torch.nonzero(where_in_order == k).flatten()
                taken[inside[:int(target[k])]] = True                                   # all of it when short
            rest = torch.nonzero(~taken).flatten()[:self.ipc - int(taken.sum())]
            taken[rest] = True
            selected[order[taken]] = True
        return selected, self.everyone(p)


@dataclass
class SubgroupSelection(Sampler):
    """S3 subgroup selection (module docstring): one subgroup of ipc consecutive pool images per class, close
    to the real class centroid and far from the other classes' chosen subgroups."""

    groups: int | None = None           # G subgroups per class; None: as many as the pool holds (pool_mult)
    alpha: float = 1.0                  # weight of closeness to the real centroid (IMS3 --w-real)
    beta: float = 1.0                   # weight of separation between classes (IMS3 --w-sep)
    eps: float = 1e-6                   # IMS3 --sel-eps
    iterations: int = 5                 # coordinate-ascent sweeps at most (IMS3 --sel-max-iters)
    name: ClassVar[str] = "s3"
    needs: ClassVar[tuple] = ("real_centroids",)

    def __post_init__(self):
        super().__post_init__()
        if self.groups is not None:
            self.groups = check_int("groups", self.groups)
        self.iterations = check_int("iterations", self.iterations, minimum=0)
        for key in ("alpha", "beta"):
            if not 0 <= float(getattr(self, key)) < math.inf:
                raise SelectionInputError(f"{key} must be a finite number >= 0, got {getattr(self, key)!r}")
        if not 0 < float(self.eps) < math.inf:
            raise SelectionInputError(f"eps must be > 0, got {self.eps!r}")

    def subgroups(self, p: Prepared) -> tuple[Tensor, Tensor]:
        """(C, G, ipc) pool indices of every subgroup and (C, G, d) their normalised centroids."""
        G = self.groups or int(p.counts.min()) // self.ipc
        short = torch.nonzero(p.counts < G * self.ipc).flatten()
        if G < 1 or short.numel():
            c = int(short[0]) if short.numel() else 0
            raise SelectionInputError(f"s3 needs {max(G, 1)} subgroups of ipc={self.ipc} images per class; class {c}"
                                      f" has {int(p.counts[c])} pool images")
        order = torch.argsort(p.labels * p.n + torch.arange(p.n, device=p.device))    # class by class, pool order
        starts = torch.cumsum(p.counts, 0) - p.counts                                 # (C,)
        idx = order[starts[:, None] + torch.arange(G * self.ipc, device=p.device)]     # (C, G*ipc)
        idx = idx.view(p.num_classes, G, self.ipc)
        centroids = p.unit(idx).mean(2)                                                # (C, G, d)
        return idx, centroids / torch.linalg.vector_norm(centroids, dim=-1, keepdim=True)

    def choose(self, p: Prepared) -> tuple[Tensor, Tensor]:
        idx, cent = self.subgroups(p)                                                  # (C, G, ipc), (C, G, d)
        real = p.extras["real_centroids"]                                              # (C, d)
        C, G = idx.shape[:2]
        to_real = 1 - (cent * real[:, None]).sum(-1).clamp(-1, 1)                       # (C, G) d(c, r)
        close = -torch.log(to_real + self.eps)
        pick = torch.stack([_first(to_real[i], p.tol, lowest=True) for i in range(C)])
        for _ in range(self.iterations):
            moved = False
            for i in range(C):
                others = torch.cat([torch.arange(i), torch.arange(i + 1, C)]).to(p.device)
                chosen = cent[others, pick[others]]                                    # (C-1, d)
                sep = torch.log(1 - (cent[i] @ chosen.T).clamp(-1, 1) + self.eps).sum(1)   # (G,)
                value = self.alpha * close[i] + self.beta * sep                        # L up to a constant
                best = _first(value, p.tol, lowest=False)
                if value[best] > value[pick[i]] + p.tol:                               # a strict improvement
                    pick[i], moved = best, True
            if not moved:
                break
        selected = torch.zeros(p.n, dtype=torch.bool, device=p.device)
        selected[idx[torch.arange(C, device=p.device), pick].flatten()] = True
        return selected, self.everyone(p)


def _first(values: Tensor, tol: float, lowest: bool) -> Tensor:
    """The lowest index whose value is within tol of the min (or max)."""
    best = values.min() if lowest else values.max()
    near = values <= best + tol if lowest else values >= best - tol
    return torch.nonzero(near).flatten()[0]
