"""The paper's figures as PNG files, from run folders.

    tsne_figure(run_dir, "fig3_tsne.png")       # Fig. 3: t-SNE of the pool's embeddings, selected images marked
    margin_grid(run_dir, "fig4_margins.png")    # Fig. 4: selected images per class with their margin scores
    curve_figure(table, "fig5_ratio.png")       # Fig. 5 / Table 4 as curves: accuracy against the swept value
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sas.report.plots import project_2d, save_figure  # noqa: E402

__all__ = ["tsne_figure", "margin_grid", "curve_figure"]


def tsne_figure(run_dir, out, seed: int = 0) -> Path:
    from sas.encoders.cache import cached_embeddings
    from sas.run_folder import RunFolder

    folder = RunFolder(run_dir)
    rows = folder.pool_scores()
    feats = cached_embeddings(folder.results()["embeddings"], [r["file"] for r in rows]).numpy()
    labels = np.array([r["label"] for r in rows])
    chosen = np.array([r["selected"] for r in rows])
    xy, _ = project_2d(feats, "tsne", seed, tsne_iterations=1000)       # sklearn's default iterations
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(xy[m & ~chosen, 0], xy[m & ~chosen, 1], s=8, color=cmap(c % 10), alpha=0.35)
        ax.scatter(xy[m & chosen, 0], xy[m & chosen, 1], s=46, color=cmap(c % 10), edgecolors="black",
                   linewidths=1.0, label=f"class {c}")
    ax.set_title(f"t-SNE of the pool; selected images outlined ({chosen.sum()} of {len(rows)})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best", ncol=2)
    return save_figure(fig, out)


def margin_grid(run_dir, out, classes: list[int] | None = None) -> Path:
    from sas.data.distilled import read_manifest
    from sas.data.images import open_rgb
    from sas.run_folder import RunFolder

    dist = RunFolder(run_dir).distilled_dir()
    rows = read_manifest(dist)                    # the checked reader: files inside the set, labels numbers
    by_class: dict[int, list[dict]] = {}
    for r in rows:
        by_class.setdefault(r["label"], []).append(r)
    keep = classes if classes is not None else sorted(by_class)
    ncols = max(len(by_class[c]) for c in keep)
    fig, axes = plt.subplots(len(keep), ncols, figsize=(1.4 * ncols, 1.6 * len(keep)), squeeze=False)
    for i, c in enumerate(keep):
        items = sorted(by_class[c], key=lambda r: -r.get("margin", 0.0))
        for j in range(ncols):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(items):
                ax.imshow(np.asarray(open_rgb(dist / items[j]["file"])))
                ax.set_title(f"{items[j].get('margin', float('nan')):.3f}", fontsize=7)
        axes[i][0].text(-0.1, 0.5, items[0]["class"], transform=axes[i][0].transAxes, ha="right", va="center",
                        fontsize=8)
    fig.suptitle("Selected images with their margin scores", fontsize=9)
    return save_figure(fig, out)


def curve_figure(table: dict, out) -> Path:
    """Accuracy against the table's row values, one line per column (missing cells skipped)."""
    spec, cells = table["spec"], table["cells"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for clabel, _ in spec.cols:
        pts = [(i, cells[(r, clabel)].best) for i, (r, _) in enumerate(spec.rows)
               if cells[(r, clabel)] is not None and cells[(r, clabel)].status == "ok"]
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts], marker="o",
                        capsize=3, label=clabel)
    ax.set_xticks(range(len(spec.rows)), [r for r, _ in spec.rows], rotation=0, fontsize=7)
    ax.set_xlabel(spec.corner)
    ax.set_ylabel("best top-1 (%)")
    ax.set_title(spec.title, fontsize=8)
    ax.legend(fontsize=7)
    return save_figure(fig, out)
