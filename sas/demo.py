"""Offline demo of the selection library on real images (scikit-learn's digits).

    python -m sas.demo                     # IPC 10, pool 4 x IPC, every sampler
    python -m sas.demo --ipc 5 --pool-mult 3 --out outputs/demo

What it does, end to end, with no network:
  1. digits (1,797 real 8x8 handwritten digits, 10 classes), fixed seeded
     70/30 stratified train/test split;
  2. a domain embedding (PCA-whitened pixels, fitted on the train split) in
     place of CLIP, and visual class prototypes (mean train embedding per class);
  3. a pool of pool_mult x IPC train images per class (seeded);
  4. every sampler of `sas.sampling` on that pool;
  5. a logistic-regression classifier trained on each selection's pixels,
     scored on the real test split;
and prints a table (sampler, test accuracy, mean margin, mean within-class
angular distance, selection time) and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def run(ipc: int = 10, pool_mult: int = 4, seed: int = 0, embed_dim: int = 32) -> dict:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from sas import scores
    from sas.sampling import Ablation, Herding, KCenter, MixedScore, Random, SAS

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0                      # (1797, 64) pixels in [0, 1]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)

    pca = PCA(n_components=embed_dim, whiten=True, random_state=seed).fit(x_tr)
    emb_tr = torch.from_numpy(pca.transform(x_tr))                  # (n_train, e)
    emb_tr = emb_tr / emb_tr.norm(dim=1, keepdim=True)
    prototypes = torch.stack([emb_tr[torch.from_numpy(y_tr == c)].mean(0) for c in range(10)])  # (10, e)

    rng = np.random.default_rng(seed)
    pool = np.concatenate([rng.permutation(np.flatnonzero(y_tr == c))[:pool_mult * ipc] for c in range(10)])
    pool_x, pool_y = x_tr[pool], y_tr[pool]
    feats, labels = emb_tr[pool], torch.from_numpy(pool_y)
    pool_scores = scores.compute_scores(feats, labels, prototypes)

    samplers = {
        "sas": SAS(ipc=ipc, pool_mult=pool_mult),
        "mixed (lam 0.1)": MixedScore(ipc=ipc, pool_mult=pool_mult, lam=0.1),
        "sas w/o diversity": Ablation(ipc=ipc, pool_mult=pool_mult, use_div=False),
        "kcenter": KCenter(ipc=ipc, pool_mult=pool_mult),
        "herding": Herding(ipc=ipc, pool_mult=pool_mult),
        **{f"random (seed {s})": Random(ipc=ipc, pool_mult=pool_mult, seed=s) for s in range(3)},
    }
    rows = []
    for name, sampler in samplers.items():
        t0 = time.perf_counter()
        idx = sampler(feats, labels, prototypes, record=False).indices.numpy()
        elapsed = time.perf_counter() - t0
        clf = LogisticRegression(max_iter=5000).fit(pool_x[idx], pool_y[idx])
        v = feats[idx]
        within = [scores.angular_distance(v[pool_y[idx] == c], v[pool_y[idx] == c]) for c in range(10)]
        diversity = float(np.mean([d.sum().item() / (d.shape[0] * (d.shape[0] - 1)) for d in within])) \
            if ipc > 1 else 0.0
        rows.append({
            "sampler": name, "config": sampler.config(),
            "test_accuracy": float(clf.score(x_te, y_te)),
            "mean_margin": float(pool_scores.margin[idx].mean()),
            "mean_within_class_angle": diversity,
            "select_ms": elapsed * 1e3,
            "selected": idx.tolist(),
        })
    return {"dataset": "sklearn digits (real 8x8 images), 70/30 stratified split", "seed": seed,
            "ipc": ipc, "pool_mult": pool_mult, "pool_size": int(len(pool)), "test_size": int(len(y_te)),
            "embedding": f"PCA-whitened pixels, {embed_dim} dims; visual prototypes", "rows": rows}


def format_table(report: dict) -> str:
    lines = [f"{'sampler':<20} {'test acc':>9} {'margin':>8} {'diversity':>10} {'select':>9}"]
    for r in report["rows"]:
        lines.append(f"{r['sampler']:<20} {100 * r['test_accuracy']:>8.1f}% {r['mean_margin']:>8.3f} "
                     f"{r['mean_within_class_angle']:>10.3f} {r['select_ms']:>7.1f}ms")
    rand = [r["test_accuracy"] for r in report["rows"] if r["sampler"].startswith("random")]
    mean = sum(rand) / len(rand)
    std = (sum((a - mean) ** 2 for a in rand) / len(rand)) ** 0.5
    lines.append(f"{'random (mean +- std)':<20} {100 * mean:>8.1f}% +- {100 * std:.1f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Offline demo of SAS selection on real digits.")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--pool-mult", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("outputs/demo"))
    args = ap.parse_args(argv)
    if args.ipc < 1 or args.pool_mult < 1:
        ap.error(f"--ipc and --pool-mult must be >= 1 (got {args.ipc}, {args.pool_mult})")
    report = run(args.ipc, args.pool_mult, args.seed)
    print(f"digits: pool of {report['pool_size']} real images ({args.pool_mult} x IPC {args.ipc} per class), "
          f"test split of {report['test_size']}")
    print(format_table(report))
    path = args.out / "selection_report.json"
    _atomic_write_text(path, json.dumps(report, indent=1))
    print(f"report: {path.resolve()}")


if __name__ == "__main__":
    main()
