"""Pool and set quality from the embeddings a run already has: Fréchet distance and precision / recall /
density / coverage against the real train split, per class and overall.

    q = set_quality(real, real_labels, fake, fake_labels, class_names, k=5)
    q["overall"]["fd"], q["per_class"]["tench"]["coverage"]

Fréchet distance (Heusel et al. 2017, on these embeddings instead of Inception features):
    |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)),  S the covariances (unbiased, as numpy.cov);
    Tr((S_r S_f)^(1/2)), in float64: with fewer images than dimensions, the sum of the singular values of
    R F^T / sqrt((m-1)(n-1)) (R, F the centred rows: the same non-zero eigenvalues), else the sum of square
    roots of the eigenvalues of S_r^(1/2) S_f S_r^(1/2).
Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020), Euclidean distances,
a real image's radius = the distance to its k-th nearest other real image (a fake image's: among the fakes),
strict inequalities as the authors' prdc package:
    precision = share of fakes within some real image's radius
    recall    = share of reals within some fake image's radius
    density   = (1 / k) x mean over fakes of how many real radii hold it
    coverage  = share of reals whose nearest fake is within their radius
A class (or set) with at most k images on a side gets None for what needs k neighbours there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["frechet_distance", "prdc", "set_quality", "METRICS"]

METRICS = ("fd", "precision", "recall", "density", "coverage")


def frechet_distance(real: Tensor, fake: Tensor) -> float | None:
    """(m, d), (n, d) -> the Fréchet distance of their Gaussian fits; None with fewer than 2 rows a side."""
    if len(real) < 2 or len(fake) < 2:
        return None
    a, b = real.double(), fake.double()
    mu = a.mean(0) - b.mean(0)
    ac, bc = a - a.mean(0), b - b.mean(0)                                               # centred rows
    m, n, d = len(a), len(b), a.shape[1]
    trace_a, trace_b = (ac * ac).sum() / (m - 1), (bc * bc).sum() / (n - 1)             # Tr(S_a), Tr(S_b)
    if min(m, n) <= d:
        # S_a S_b shares its non-zero eigenvalues with (A B^T)(B A^T) / ((m-1)(n-1)) (A, B the centred rows), so
        # Tr((S_a S_b)^(1/2)) is the sum of the singular values of A B^T / sqrt((m-1)(n-1)): no d x d matrix.
        cross = torch.linalg.svdvals(ac @ bc.T).sum() / math.sqrt((m - 1) * (n - 1))
    else:
        sa, sb = ac.T @ ac / (m - 1), bc.T @ bc / (n - 1)                                 # (d, d)
        w, v = torch.linalg.eigh(sa)
        root_a = (v * w.clamp(min=0).sqrt()) @ v.T                                      # S_a^(1/2)
        cross = torch.linalg.eigvalsh(root_a @ sb @ root_a).clamp(min=0).sqrt().sum()
    return float(mu @ mu + trace_a + trace_b - 2 * cross)


CHUNK = 2048      # rows of a distance matrix held at once: memory stays O(CHUNK x n) for any set size


def _kth(points: Tensor, k: int) -> Tensor:
    """Each point's distance to its k-th nearest other point (its own zero is the 0th) -> (m,)."""
    return torch.cat([torch.kthvalue(torch.cdist(points[i:i + CHUNK], points), k + 1, dim=1).values
                      for i in range(0, len(points), CHUNK)])


def prdc(real: Tensor, fake: Tensor, k: int = 5) -> dict:
    """{"precision", "recall", "density", "coverage"} of fake (n, d) against real (m, d); see the module."""
    a, b = real.double(), fake.double()
    out = dict.fromkeys(("precision", "recall", "density", "coverage"))
    if len(a) > k and len(b):
        r_real = _kth(a, k)                                                             # (m,)
        held = torch.zeros(len(b), dtype=torch.float64)                                 # real radii holding each fake
        covered = torch.zeros(len(a), dtype=torch.bool)
        for i in range(0, len(a), CHUNK):
            cross = torch.cdist(a[i:i + CHUNK], b)                                      # (chunk, n)
            inside = cross < r_real[i:i + CHUNK, None]
            held += inside.sum(0)
            covered[i:i + CHUNK] = cross.min(1).values < r_real[i:i + CHUNK]
        out["precision"] = float((held > 0).double().mean())
        out["density"] = float(held.mean() / k)
        out["coverage"] = float(covered.double().mean())
    if len(b) > k and len(a):
        r_fake = _kth(b, k)                                                             # (n,)
        reached = torch.cat([(torch.cdist(a[i:i + CHUNK], b) < r_fake[None, :]).any(1)
                             for i in range(0, len(a), CHUNK)])
        out["recall"] = float(reached.double().mean())
    return out


def _measures(real: Tensor, fake: Tensor, k: int) -> dict:
    return {"fd": frechet_distance(real, fake), **prdc(real, fake, k), "n": len(fake)}


def set_quality(real: Tensor, real_labels: Tensor, fake: Tensor, fake_labels: Tensor, class_names, k: int = 5) -> dict:
    """{"k", "overall": measures, "per_class": {class name: measures}} of a pool or a distilled set (fake)
    against the real images, both as embeddings."""
    per_class = {}
    for c, name in enumerate(class_names):
        per_class[str(name)] = _measures(real[real_labels == c], fake[fake_labels == c], k)
    return {"k": k, "overall": _measures(real, fake, k), "per_class": per_class}
