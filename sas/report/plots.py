"""Drawing helpers shared by the report's figures (figures.py: the paper's, from run folders) and each run's
pictures (pictures.py): a 2-D projection of embeddings and the one PNG writer.

    xy, method = project_2d(feats, "auto", seed=0)     # (N, 2): t-SNE up to TSNE_MAX images, PCA above
    save_figure(fig, "out.png")                        # lays out, writes (folders made), closes
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["project_2d", "save_figure", "TSNE_MAX", "TSNE_ITERATIONS"]

TSNE_MAX = 250           # pools above this many images are mapped with PCA (t-SNE: seconds per 100 images)
TSNE_ITERATIONS = 500


def project_2d(feats, method: str = "auto", seed: int = 0, tsne_iterations: int = TSNE_ITERATIONS):
    """(N, d) -> ((N, 2), the method used): t-SNE (sklearn, PCA init) up to TSNE_MAX images for auto, else PCA
    (the top two right singular vectors of the centred features)."""
    x = np.asarray(feats, dtype=np.float32)
    method = ("tsne" if len(x) <= TSNE_MAX else "pca") if method == "auto" else method
    if method == "tsne" and len(x) > 3:
        from sklearn.manifold import TSNE
        return TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3)), init="pca",
                    random_state=seed, max_iter=tsne_iterations).fit_transform(x), "tsne"
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred[:, :1], np.zeros(len(x))]), "pca"


def save_figure(fig, out, dpi: int = 130) -> Path:
    """Lay out, write the PNG (its folder made), close the figure."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
