"""Slow, literal implementations of the selection rules, written from the spec
with plain Python loops over numpy float64 (no running sums, no batching).
The vectorised library must agree with them."""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-6


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ang(u, v):
    return math.acos(min(max(float(np.dot(u, v)), -1 + EPS), 1 - EPS))


def scores(feats, labels, text):
    v, t = unit(feats), unit(text)
    labels = np.asarray(labels)
    n, C = len(v), len(t)
    rel = np.array([-ang(v[i], t[labels[i]]) for i in range(n)])
    sep = np.array([min(ang(v[i], t[c]) for c in range(C) if c != labels[i]) for i in range(n)])
    div = np.zeros(n)
    for i in range(n):
        same = [j for j in range(n) if labels[j] == labels[i] and j != i]
        div[i] = np.mean([ang(v[i], v[j]) for j in same]) if same else 0.0
    return rel, sep, rel + sep, div


def _ranked(members, score):
    """members sorted by score descending, ties to the lower index."""
    return sorted(members, key=lambda i: (-score[i], i))


def walk(v, cand, ipc, tol):
    """Stage 2, recomputing every mean from scratch."""
    S = []  # in entry order
    for c in cand:
        S.append(c)
        if len(S) > ipc:
            means = [np.mean([ang(v[a], v[b]) for b in S if b != a]) for a in S]
            low = min(means)
            tied = [pos for pos, m in enumerate(means) if m <= low + tol]
            S.pop(max(tied))
    return S


def sas(feats, labels, text, ipc, ratio=0.5, score=None, tol=1e-9):
    v = unit(feats)
    labels = np.asarray(labels)
    if score is None:
        score = scores(feats, labels, text)[2]
    out = []
    for c in range(int(labels.max()) + 1):
        members = [i for i in range(len(v)) if labels[i] == c]
        n = len(members)
        k = min(n, max(ipc, math.ceil(round(ratio * n, 9))))
        out += walk(v, _ranked(members, score)[:k], ipc, tol)
    return sorted(out)


def top(labels, score, ipc):
    labels = np.asarray(labels)
    out = []
    for c in range(int(labels.max()) + 1):
        out += _ranked([i for i in range(len(labels)) if labels[i] == c], score)[:ipc]
    return sorted(out)


def mixed(feats, labels, text, ipc, lam):
    labels = np.asarray(labels)
    _, _, m, div = scores(feats, labels, text)
    score = m.copy()
    for c in range(int(labels.max()) + 1):
        idx = labels == c
        d = div[idx]
        z = np.zeros_like(d) if d.max() == d.min() else (d - d.mean()) / d.std()
        score[idx] = m[idx] + lam * z * m[idx].std()
    return top(labels, score, ipc)


def kcenter(feats, labels, ipc, features="normalised", start="mean", seed=0):
    """Greedy k-center per class: the first centre (nearest the class mean, or the class member that comes first
    in torch.randperm(N) seeded with `seed`), then repeatedly the member farthest from its nearest centre
    (squared Euclidean distance on unit rows, or on the rows as given); ties to the lower index."""
    import torch
    v, labels = (unit(feats) if features == "normalised" else np.asarray(feats, dtype=np.float64)), np.asarray(labels)
    perm = torch.randperm(len(v), generator=torch.Generator().manual_seed(seed)).numpy()
    out = []
    for c in range(int(labels.max()) + 1):
        members = [i for i in range(len(v)) if labels[i] == c]
        if start == "mean":
            mean = v[members].mean(0)
            first = min(members, key=lambda i: (np.sum((v[i] - mean) ** 2), i))
        else:
            first = min(members, key=lambda i: perm[i])
        chosen = [first]
        while len(chosen) < ipc:
            rest = [i for i in members if i not in chosen]
            far = lambda i: min(np.sum((v[i] - v[j]) ** 2) for j in chosen)  # noqa: E731
            chosen.append(max(rest, key=lambda i: (far(i), -i)))
        out += chosen
    return sorted(out)


def herding(feats, labels, ipc):
    v, labels = unit(feats), np.asarray(labels)
    out = []
    for c in range(int(labels.max()) + 1):
        members = [i for i in range(len(v)) if labels[i] == c]
        mu = v[members].mean(0)
        chosen = []
        while len(chosen) < ipc:
            rest = [i for i in members if i not in chosen]
            gap = lambda i: np.sum((v[chosen + [i]].mean(0) - mu) ** 2)  # noqa: E731
            chosen.append(min(rest, key=lambda i: (gap(i), i)))
        out += chosen
    return sorted(out)


# ----------------------------------------------------------------------------- difficulty-guided sampling

def dg_log_transform(values, b, t, floor=1e-4):
    """DiffGuideSamp's log transform, one value at a time."""
    s = sorted(values)
    n = len(s)
    bottom, top = s[min(b, n - 1)], s[max(n - 1 - t, 0)]
    if bottom == 0:
        bottom = floor
    out = []
    for v in values:
        v = bottom if v < bottom else v
        v = top if v > top else v
        if top == bottom:
            out.append(math.nan)
            continue
        x = math.log(v / bottom) / math.log(top / bottom)
        out.append(floor if x < floor else x)
    return out


def dg_bin(x, bins=10):
    if not (0 <= x <= 1):                                  # nan too
        return None
    return min(int(math.floor(x * bins)), bins - 1)


def dg_hist(values, bins=10):
    h = [0.0] * bins
    for v in values:
        k = dg_bin(v, bins)
        if k is not None:
            h[k] += 1
    return h


def dg_kl(p, q):
    sp, sq = sum(p), sum(q)
    if sp == 0 or sq == 0:
        return math.inf
    total = 0.0
    for a, b in zip(p, q):
        a, b = a / sp, b / sq
        if a > 0:
            if b == 0:
                return math.inf
            total += a * math.log2(a / b)
    return total


def diffguided(labels, difficulty, real_difficulty, real_labels, ipc, keys, bins=10, w=0.5, T=None, floor=1e-4):
    """Difficulty-guided sampling, class by class, with one loop per step; `keys` is the random order
    (lower key first) that the seeded draws follow."""
    labels = list(labels)
    T = T or max(1, ipc // 2)
    chosen = []
    for c in sorted(set(labels)):
        members = [i for i in range(len(labels)) if labels[i] == c]
        d = [float(difficulty[i]) for i in members]
        best, bt = math.inf, (0, 0)
        for b in range(T):
            for t in range(T):
                h_log = dg_hist(dg_log_transform(d, b, t, floor), bins)
                value = w * dg_kl(dg_hist(d, bins), h_log) + (1 - w) * dg_kl([1.0] * bins, h_log)
                if value < best:
                    best, bt = value, (b, t)
        r = [float(real_difficulty[j]) for j in range(len(real_labels)) if real_labels[j] == c]
        h = dg_hist(dg_log_transform(r, min(bt[0], len(r) - 1), min(bt[1], len(r) - 1), floor), bins)
        total = sum(h)
        scaled = [x * ipc / total for x in h]
        target = [math.floor(x) for x in scaled]
        for k in sorted(range(bins), key=lambda k: (-(scaled[k] - target[k]), k))[:ipc - sum(target)]:
            target[k] += 1
        where = dict(zip(members, (dg_bin(x, bins) for x in dg_log_transform(d, bt[0], bt[1], floor))))
        ordered = sorted(members, key=lambda i: keys[i])
        taken = []
        for k in range(bins):
            inside = [i for i in ordered if where[i] == k]
            taken += inside[:target[k]]
        taken += [i for i in ordered if i not in taken][:ipc - len(taken)]
        chosen += taken
    return sorted(chosen)


# ----------------------------------------------------------------------------- S3 subgroup selection

def s3(feats, labels, real_centroids, ipc, groups, alpha=1.0, beta=1.0, eps=1e-6, iterations=5):
    """IMS3's subgroup selection with the whole objective recomputed for every trial."""
    v, r = unit(feats), unit(real_centroids)
    labels = list(labels)
    C = len(r)
    members = [[i for i in range(len(labels)) if labels[i] == c] for c in range(C)]
    sub = [[members[c][g * ipc:(g + 1) * ipc] for g in range(groups)] for c in range(C)]

    def centroid(ix):
        m = np.mean([v[i] for i in ix], axis=0)
        return m / np.linalg.norm(m)
    cent = [[centroid(sub[c][g]) for g in range(groups)] for c in range(C)]

    def d(a, b):
        return 1.0 - min(max(float(np.dot(a, b)), -1.0), 1.0)

    def objective(pick):
        close = sum(-math.log(d(cent[i][pick[i]], r[i]) + eps) for i in range(C))
        sep = sum(math.log(d(cent[i][pick[i]], cent[j][pick[j]]) + eps) for i in range(C) for j in range(i + 1, C))
        return alpha * close + beta * sep

    pick = [min(range(groups), key=lambda g: (d(cent[c][g], r[c]), g)) for c in range(C)]
    best = objective(pick)
    for _ in range(iterations):
        improved = False
        for i in range(C):
            cur, best_i, val_i = pick[i], pick[i], best
            for g in range(groups):
                if g == cur:
                    continue
                trial = list(pick)
                trial[i] = g
                val = objective(trial)
                if val > val_i:
                    best_i, val_i = g, val
            if best_i != cur:
                pick[i], best, improved = best_i, val_i, True
        if not improved:
            break
    return sorted(i for c in range(C) for i in sub[c][pick[c]])


# ----------------------------------------------------------------------------- set quality

def frechet(real, fake):
    """pytorch-fid's formula with scipy's matrix square root."""
    from scipy import linalg
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def prdc(real, fake, k):
    """Precision, recall, density, coverage, one pair of points at a time."""
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)

    def dist(u, v):
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v)))

    def radius(points, i):
        return sorted(dist(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]
    r_real = [radius(real, i) for i in range(len(real))]
    precision = np.mean([any(dist(f, real[i]) < r_real[i] for i in range(len(real))) for f in fake])
    recall = None
    if len(fake) > k:                                      # a fake radius needs k other fakes
        r_fake = [radius(fake, j) for j in range(len(fake))]
        recall = np.mean([any(dist(r, fake[j]) < r_fake[j] for j in range(len(fake))) for r in real])
    density = np.mean([sum(dist(f, real[i]) < r_real[i] for i in range(len(real))) for f in fake]) / k
    coverage = np.mean([min(dist(real[i], f) for f in fake) < r_real[i] for i in range(len(real))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}
