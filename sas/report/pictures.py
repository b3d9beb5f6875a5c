"""The pictures every distill run writes (PNG in <selection>/figures/, and to W&B): what the scores looked like
over the pool, where the selection sits in embedding space, and the selected images.

    paths = selection_pictures(folder.figures_dir(sel_dir), selection)       # selection: sas.artifacts.PoolSelection
    # {"scores": score_histograms.png, "map": embedding_map.png, "grid": selected_grid.png}

  score_histograms  margin / relevance / separation, one panel each: per class (the first `max_classes`)
                    a step histogram over the pool, the selected images' values marked below it (rug ticks
                    in the class's colour); samplers without prototypes have no scores and skip it
  embedding_map     the pool's embeddings in 2-D, coloured by class, the selection outlined: t-SNE up to
                    `tsne_max` images, PCA above (t-SNE's cost grows with N; PCA is one SVD)
  selected_grid     the selected images, one row per class (the first `max_classes`, `max_per_class` each)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sas.report.plots import project_2d, save_figure  # noqa: E402

__all__ = ["selection_pictures", "score_histograms", "embedding_map", "selected_grid"]

MAX_CLASSES = 10         # classes shown in histograms and grids (all of them in the map)
MAX_PER_CLASS = 10


def score_histograms(out, rec: dict, labels, chosen, names, max_classes: int = MAX_CLASSES) -> Path | None:
    keys = [k for k in ("margin", "relevance", "separation") if k in rec]
    if not keys:
        return None
    labels, chosen = np.asarray(labels), np.asarray(chosen, dtype=bool)
    classes = list(range(min(max_classes, len(names))))
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.0), squeeze=False)
    for j, k in enumerate(keys):
        ax, v = axes[0][j], np.asarray(rec[k], dtype=float)
        bins = np.histogram_bin_edges(v[np.isin(labels, classes)], bins=24)
        for i, c in enumerate(classes):
            mine = labels == c
            counts, _ = np.histogram(v[mine], bins=bins)
            ax.stairs(counts, bins, color=cmap(i % 10), label=str(names[c])[:16])
            ax.plot(v[mine & chosen], np.full((mine & chosen).sum(), -0.6 - 0.35 * i), "|", color=cmap(i % 10),
                    markersize=5)
        ax.set_title(k, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=6, loc="upper right")
    fig.suptitle("Pool scores per class (histograms), selected images below (ticks)", fontsize=9)
    return save_figure(fig, out, dpi=110)


def embedding_map(out, feats, labels, chosen, method: str = "auto", seed: int = 0) -> Path:
    labels, chosen = np.asarray(labels), np.asarray(chosen, dtype=bool)
    xy, method = project_2d(feats, method, seed)
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10" if labels.max(initial=0) < 10 else "hsv")
    colour = cmap((labels % 10) / 9 if labels.max(initial=0) < 10 else labels / max(1, labels.max()))
    ax.scatter(xy[~chosen, 0], xy[~chosen, 1], s=6, c=colour[~chosen], alpha=0.35)
    ax.scatter(xy[chosen, 0], xy[chosen, 1], s=30, c=colour[chosen], edgecolors="black", linewidths=0.8)
    ax.set_title(f"{method.upper()} of the pool ({len(xy)} images); selection outlined ({chosen.sum()})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, out, dpi=110)


CELL = 64               # side of one image in the selected grid (pixels of the mosaic)


def selected_grid(out, files, labels, idx, names, max_classes: int = MAX_CLASSES,
                  max_per_class: int = MAX_PER_CLASS) -> Path:
    """The selected images, a row per class, as one mosaic (each image centre-cropped to a CELL square)."""
    from PIL import Image, ImageOps

    from sas.data.images import open_rgb

    by_class: dict[int, list[int]] = {}
    for i in idx:
        by_class.setdefault(int(labels[i]), []).append(i)
    classes = sorted(by_class)[:max_classes]
    ncols = max(1, min(max_per_class, max(len(v) for v in by_class.values())))
    mosaic = np.full((len(classes) * CELL, ncols * CELL, 3), 255, dtype=np.uint8)      # (rows*S, cols*S, 3)
    for r, c in enumerate(classes):
        for j, i in enumerate(by_class[c][:ncols]):
            cell = ImageOps.fit(open_rgb(files[i]), (CELL, CELL), Image.Resampling.BICUBIC)
            mosaic[r * CELL:(r + 1) * CELL, j * CELL:(j + 1) * CELL] = np.asarray(cell)
    fig, ax = plt.subplots(figsize=(1.0 * ncols + 1.4, 1.0 * len(classes)))
    ax.imshow(mosaic)
    ax.set_yticks([(r + 0.5) * CELL for r in range(len(classes))], [str(names[c])[:18] for c in classes], fontsize=7)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return save_figure(fig, out, dpi=110)


def selection_pictures(folder, selection, map_method: str = "auto") -> dict:
    """All three for one PoolSelection (sas.artifacts) -> {name: path} (scores only when the sampler computed
    them)."""
    folder = Path(folder)
    pool, rec, idx = selection.encoded.pool, selection.record, list(selection.indices)
    files, labels, names = pool.files, pool.labels, list(pool.classes.names)
    chosen = np.zeros(len(files), dtype=bool)
    chosen[idx] = True
    out = {"map": embedding_map(folder / "embedding_map.png", selection.encoded.features.numpy(), labels, chosen,
                                map_method),
           "grid": selected_grid(folder / "selected_grid.png", files, labels, idx, names)}
    hist = score_histograms(folder / "score_histograms.png", rec, labels, chosen, names)
    if hist is not None:
        out["scores"] = hist
    return out
