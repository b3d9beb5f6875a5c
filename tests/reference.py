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
