"""The semantic scores of SAS (paper Sec. 3.2.1, Eq. 4-8), batched, on any device.

    from sas import scores
    d   = scores.angular_distance(a, b)                     # (n, m) radians
    s   = scores.compute_scores(image_features, labels, prototypes)
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

from sas.inputs import Prepared, prepare

__all__ = [
    "EPS", "ImageScores", "angular_distance", "pairwise_angular", "angular_blocks", "relevance", "separation",
    "margin", "static_diversity", "compute_scores", "prepared_relevance_separation", "prepared_static_diversity",
]

EPS = 1e-6
# Rows of the image-by-prototype similarity computed at once, and elements of
# one (classes, k, k) block of per-class Gram matrices: both bound peak memory.
ROW_CHUNK = 1 << 13
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


def _gram_to_angles_(gram: Tensor) -> Tensor:
    """In place: (B, k, k) within-set cosines -> angular distances with a zero diagonal."""
    torch.arccos(gram.clamp_(-1 + EPS, 1 - EPS), out=gram)
    gram.diagonal(dim1=1, dim2=2).zero_()  # d(i, i) is never part of a mean over j != i
    return gram


def pairwise_angular(v: Tensor) -> Tensor:
    """Within-set angular distances of normalised rows (B, k, d) -> (B, k, k), zero diagonal.

    dist[b, i, j] and dist[b, j, i] may differ in the last bit (a matmul need
    not be symmetric): a mean for member i reads one side consistently.
    """
    return _gram_to_angles_(torch.bmm(v, v.mT))


def prepared_relevance_separation(p: Prepared, need_separation: bool = True) -> tuple[Tensor, Tensor | None]:
    """(N,) relevance and (N,) separation, over row chunks: no (N, C) matrix in full.

    The chunk buffers are allocated once and reused: on the CPU fresh large
    allocations (page faults) cost as much as the matmul itself.
    """
    rel = torch.empty(p.n, dtype=p.dtype, device=p.device)
    sep = torch.empty_like(rel) if need_separation else None
    chunk = min(ROW_CHUNK, p.n)
    v_buf = torch.empty(chunk, p.dim, dtype=p.dtype, device=p.device)         # (chunk, d)
    sim_buf = torch.empty(chunk, p.num_classes, dtype=p.dtype, device=p.device)  # (chunk, C)
    for start in range(0, p.n, chunk):
        rows = slice(start, min(start + chunk, p.n))
        m = rows.stop - start
        v = torch.div(p.x[rows], p.norms[rows], out=v_buf[:m])   # normalised rows
        sims = torch.matmul(v, p.t.T, out=sim_buf[:m])           # (m, C) cosines
        y = p.labels[rows, None]                                  # (m, 1)
        rel[rows] = -_arccos(sims.gather(1, y)[:, 0])
        if need_separation:
            # arccos is decreasing, so the nearest other prototype is the most similar one.
            sep[rows] = _arccos(sims.scatter_(1, y, -torch.inf).amax(dim=1))
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


def angular_blocks(p: Prepared, order: Tensor, sizes: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """Per block of classes: (idx (B, k), dist (B, k, k)) over the first sizes[c] of each class in order.

    dist holds the angular distances among each class's k rows (zero diagonal).
    Features and distances live in buffers reused by the next block (fresh large
    allocations cost as much as the matmul on the CPU): use dist before advancing.
    """
    f_buf = d_buf = None
    for _, idx in class_blocks(order, p.counts, sizes, p.dim):
        B, k = idx.shape
        if d_buf is None or d_buf.shape[1] != k or d_buf.shape[0] < B:
            f_buf = torch.empty(B, k, p.dim, dtype=p.dtype, device=p.device)
            d_buf = torch.empty(B, k, k, dtype=p.dtype, device=p.device)
        f = f_buf[:B]                                                      # (B, k, d)
        torch.index_select(p.x, 0, idx.flatten(), out=f.view(B * k, p.dim))
        f.div_(p.norms[idx])                                               # normalised rows
        yield idx, _gram_to_angles_(torch.bmm(f, f.mT, out=d_buf[:B]))


def prepared_static_diversity(p: Prepared) -> Tensor:
    """Eq. 7 over each class's whole pool -> (N,); a class of one image scores 0."""
    out = torch.zeros(p.n, dtype=p.dtype, device=p.device)
    for idx, dist in angular_blocks(p, torch.sort(p.labels, stable=True).indices, p.counts):
        n = idx.shape[1]
        if n > 1:
            out[idx] = dist.sum(-1) / (n - 1)  # (B, n)
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
    rel, sep = prepared_relevance_separation(p)
    return ImageScores(rel, sep, rel + sep, prepared_static_diversity(p))


def relevance(image_features, labels, prototypes) -> Tensor:
    """Eq. 5: -d(v_i, t_{y_i}) -> (N,)."""
    return prepared_relevance_separation(prepare(image_features, labels, prototypes), need_separation=False)[0]


def separation(image_features, labels, prototypes) -> Tensor:
    """Eq. 6: min over the other classes c of d(v_i, t_c) -> (N,)."""
    return prepared_relevance_separation(prepare(image_features, labels, prototypes, need_separation=True))[1]


def margin(image_features, labels, prototypes) -> Tensor:
    """Eq. 8: relevance + separation -> (N,)."""
    rel, sep = prepared_relevance_separation(prepare(image_features, labels, prototypes, need_separation=True))
    return rel + sep


def static_diversity(image_features, labels, num_classes: int | None = None) -> Tensor:
    """Eq. 7: mean angular distance to the other pool images of the same class -> (N,)."""
    return prepared_static_diversity(prepare(image_features, labels, num_classes=num_classes))


def compute_scores(image_features, labels, prototypes) -> ImageScores:
    """All four per-image scores at once."""
    return _scores(prepare(image_features, labels, prototypes, need_separation=True))
