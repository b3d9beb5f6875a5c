"""The semantic scores of SAS (paper Sec. 3.2.1, Eq. 4-8), batched, on any device.

    from sas import scores
    d   = scores.angular_distance(a, b)                     # (n, m) radians
    s   = scores.compute_scores(image_features, labels, text_features)
    s.relevance, s.separation, s.margin, s.static_diversity  # each (N,)

Inputs are torch tensors or numpy arrays; rows are L2-normalised inside.
Math keeps the input's float dtype (float64 stays float64; half precision is
computed in float32) and runs on the input's device. Nothing here imports more
than torch.

Definitions (v: image row, t_c: class prototype, all unit length):
    d(u, v)      = arccos(clamp(u . v, -1 + 1e-6, 1 - 1e-6))      Eq. 4
    relevance    = -d(v_i, t_{y_i})                               Eq. 5
    separation   = min_{c != y_i} d(v_i, t_c)                     Eq. 6
    static div.  = mean_{j in class, j != i} d(v_i, v_j)          Eq. 7
    margin       = relevance + separation                         Eq. 8
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from sas._inputs import Prepared, prepare

__all__ = [
    "EPS", "ImageScores", "angular_distance", "pairwise_angular", "relevance", "separation",
    "margin", "static_diversity", "compute_scores",
]

EPS = 1e-6
# Rows of the image-by-prototype similarity computed at once, and elements of
# one (classes, k, k) block of per-class Gram matrices: both bound peak memory.
ROW_CHUNK = 1 << 16
BLOCK_ELEMENTS = 1 << 24


def _arccos(cos: Tensor) -> Tensor:
    return torch.arccos(cos.clamp(-1 + EPS, 1 - EPS))


def angular_distance(a, b) -> Tensor:
    """Angular distance between the rows of a (n, d) and b (m, d) -> (n, m).

    Rows are normalised first; batched inputs (..., n, d) x (..., m, d) work too.
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    a = a.to(dtype)
    b = b.to(dtype=dtype, device=a.device)
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return _arccos(a @ b.mT)


def pairwise_angular(v: Tensor) -> Tensor:
    """Within-set angular distances of normalised rows (B, k, d) -> (B, k, k).

    Exactly symmetric (the upper triangle is mirrored) with a zero diagonal, so
    that every member's sum of distances to the others is one well-defined number.
    """
    dist = _arccos(torch.bmm(v, v.mT))  # (B, k, k)
    upper = torch.triu(dist, diagonal=1)
    return upper + upper.mT


def _relevance_separation(p: Prepared, need_separation: bool = True) -> tuple[Tensor, Tensor | None]:
    """(N,) relevance and (N,) separation, over row chunks: no (N, C) matrix in full."""
    rel = torch.empty(p.v.shape[0], dtype=p.dtype, device=p.v.device)
    sep = torch.empty_like(rel) if need_separation else None
    for start in range(0, p.v.shape[0], ROW_CHUNK):
        rows = slice(start, start + ROW_CHUNK)
        y = p.labels[rows, None]                       # (n, 1)
        sims = p.v[rows] @ p.t.T                       # (n, C) cosines
        rel[rows] = -_arccos(sims.gather(1, y)[:, 0])
        if need_separation:
            # arccos is decreasing, so the nearest other prototype is the most similar one.
            others = sims.scatter_(1, y, -torch.inf).amax(dim=1)  # (n,)
            sep[rows] = _arccos(others)
    return rel, sep


def class_order(keys: Tensor, labels: Tensor) -> Tensor:
    """Pool indices grouped by class (ascending), each class by key descending, ties to the lower index."""
    order = torch.sort(keys, descending=True, stable=True).indices
    return order[torch.sort(labels[order], stable=True).indices]


def class_blocks(order: Tensor, counts: Tensor, sizes: Tensor, width: int
                 ) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches of classes that share a size, as index matrices into the pool.

    order:  (N,) pool indices grouped by class (see `class_order`)
    counts: (C,) pool images per class
    sizes:  (C,) how many leading entries of each class to take
    width:  feature dimension d
    Yields (classes (B,), idx (B, size)); B * size * max(size, d) stays within
    BLOCK_ELEMENTS, so a block's (B, size, size) distances and (B, size, d)
    features are bounded whatever the pool size.
    """
    offsets = torch.cumsum(counts, 0) - counts  # (C,)
    for size in torch.unique(sizes).tolist():
        classes = torch.nonzero(sizes == size).flatten()
        step = max(1, BLOCK_ELEMENTS // (size * max(size, width)))
        cols = torch.arange(size, device=order.device)
        for i in range(0, classes.numel(), step):
            block = classes[i:i + step]
            yield block, order[offsets[block, None] + cols]  # (B,), (B, size)


def _static_diversity(p: Prepared) -> Tensor:
    """Eq. 7 over each class's whole pool -> (N,); a class of one image scores 0."""
    out = torch.zeros(p.v.shape[0], dtype=p.dtype, device=p.v.device)
    order = torch.sort(p.labels, stable=True).indices
    for _, idx in class_blocks(order, p.counts, p.counts, p.v.shape[1]):
        n = idx.shape[1]
        if n > 1:
            out[idx] = pairwise_angular(p.v[idx]).sum(-1) / (n - 1)  # (B, n)
    return out


@dataclass(frozen=True)
class ImageScores:
    """Per-image scores, each (N,) in pool order."""

    relevance: Tensor
    separation: Tensor
    margin: Tensor
    static_diversity: Tensor

    def as_dict(self) -> dict[str, Tensor]:
        return {"relevance": self.relevance, "separation": self.separation,
                "margin": self.margin, "static_diversity": self.static_diversity}


def _scores(p: Prepared) -> ImageScores:
    rel, sep = _relevance_separation(p)
    return ImageScores(rel, sep, rel + sep, _static_diversity(p))


def relevance(image_features, labels, text_features) -> Tensor:
    """Eq. 5: -d(v_i, t_{y_i}) -> (N,)."""
    return _relevance_separation(prepare(image_features, labels, text_features), need_separation=False)[0]


def separation(image_features, labels, text_features) -> Tensor:
    """Eq. 6: min over the other classes c of d(v_i, t_c) -> (N,)."""
    return _relevance_separation(prepare(image_features, labels, text_features, need_separation=True))[1]


def margin(image_features, labels, text_features) -> Tensor:
    """Eq. 8: relevance + separation -> (N,)."""
    rel, sep = _relevance_separation(prepare(image_features, labels, text_features, need_separation=True))
    return rel + sep


def static_diversity(image_features, labels, num_classes: int | None = None) -> Tensor:
    """Eq. 7: mean angular distance to the other pool images of the same class -> (N,)."""
    return _static_diversity(prepare(image_features, labels, num_classes=num_classes))


def compute_scores(image_features, labels, text_features) -> ImageScores:
    """All four per-image scores at once."""
    return _scores(prepare(image_features, labels, text_features, need_separation=True))
