"""Input checks shared by `sas.scores` and `sas.sampling` (torch only), and the `Prepared` inputs a selection
rule (a plug-in `Sampler.choose`) receives.

    from sas.inputs import prepare
    p = prepare(image_features, labels, prototypes, ipc=10, need_separation=True)
    p.x, p.norms  # (N, d) rows in the compute dtype on the features' device, (N, 1) their norms
    p.unit(idx)   # normalised rows, e.g. (B, k) indices -> (B, k, d)
    p.labels   # (N,) int64
    p.t        # (C, d) normalised prototypes, or None
    p.counts   # (C,) pool images per class
    p.extras   # the extra inputs a sampler `needs` (EXTRA_INPUTS), checked: e.g. p.extras["difficulty"] (N,)

Every failure raises `SelectionInputError` (a `ValueError`) naming the value,
row or class, before any expensive work. Nothing is clipped or dropped.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

__all__ = ["SelectionInputError", "Prepared", "prepare", "compute_dtype", "tie_tolerance", "EXTRA_INPUTS",
           "with_extras"]

EXTRA_INPUTS = {   # inputs beyond features / labels / prototypes that a sampler may declare in `needs`
    "real_centroids": "(C, d) the real train split's mean embedding per class (normalised here)",
    "difficulty": "(N,) per pool image, 1 - a real-data classifier's probability of its class, in [0, 1]",
    "real_difficulty": "(M,) the same for the real train images",
    "real_labels": "(M,) the real train images' classes",
}


class SelectionInputError(ValueError):
    """Bad input to a score or sampler; the message names the offending value."""


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float64 if any input is float64, else float32 (half precision is computed in float32)."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


def tie_tolerance(dtype: torch.dtype) -> float:
    """Values within this of each other count as tied (rule 3 of the selection spec)."""
    return 1e-9 if dtype == torch.float64 else 1e-5


def _as_tensor(x, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise SelectionInputError(f"{name} must be a tensor or array, got {type(x).__name__}: {err}") from None


def _features(x, name: str, dtype: torch.dtype | None = None, device=None) -> tuple[Tensor, Tensor]:
    """(n, d) float rows -> (rows in the compute dtype (n, d), their L2 norms (n, 1)).

    The rows are not copied when they already have the compute dtype and device;
    callers normalise the rows they use (see `Prepared.unit`).
    """
    x = _as_tensor(x, name)
    if x.dim() != 2:
        raise SelectionInputError(f"{name} must be 2-D (rows, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise SelectionInputError(f"{name} is empty: shape {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise SelectionInputError(f"{name} must be real numbers, got dtype {x.dtype}")
    if device is not None:
        x = x.to(device)
    x = x.to(dtype or compute_dtype(x.dtype))
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)  # (n, 1); nan/inf in a row make it non-finite
    bad = ~torch.isfinite(norms[:, 0])
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten()
        nonfinite = rows[~torch.isfinite(x[rows]).all(dim=1)]
        if nonfinite.numel():
            raise SelectionInputError(
                f"{name} has non-finite values (nan/inf) in row {int(nonfinite[0])}"
                f" ({nonfinite.numel()} bad row{'s' if nonfinite.numel() > 1 else ''} in all)")
        raise SelectionInputError(f"{name} row {int(rows[0])} overflows when its norm is computed; rescale the features")
    zero = norms[:, 0] == 0
    if bool(zero.any()):
        rows = torch.nonzero(zero).flatten()
        raise SelectionInputError(
            f"{name} row {int(rows[0])} has zero norm and cannot be normalised"
            f" ({rows.numel()} zero row{'s' if rows.numel() > 1 else ''} in all)")
    return x, norms


def _labels(labels, n: int, device) -> Tensor:
    labels = _as_tensor(labels, "labels")
    if labels.dim() != 1:
        raise SelectionInputError(f"labels must be 1-D (one per pool image), got shape {tuple(labels.shape)}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise SelectionInputError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape[0] != n:
        raise SelectionInputError(f"labels has {labels.shape[0]} entries but image_features has {n} rows")
    return labels.to(device=device, dtype=torch.int64)


def check_int(name: str, value, minimum: int = 1) -> int:
    """An integer >= minimum (numpy integers welcome; bools and floats refused)."""
    if isinstance(value, bool):
        raise SelectionInputError(f"{name} must be an integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise SelectionInputError(f"{name} must be an integer, got {value!r}") from None
    if out < minimum:
        raise SelectionInputError(f"{name} must be >= {minimum}, got {out}")
    return out


def check_ipc(ipc) -> int:
    return check_int("ipc", ipc, 1)


def _check_float(name: str, value) -> float:
    if isinstance(value, bool):
        raise SelectionInputError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SelectionInputError(f"{name} must be a number, got {value!r}") from None


def check_ratio(candidate_ratio) -> float:
    r = _check_float("candidate_ratio", candidate_ratio)
    if not 0.0 < r <= 1.0:  # also refuses nan
        raise SelectionInputError(f"candidate_ratio must be in (0, 1], got {candidate_ratio!r}")
    return r


def check_lam(lam) -> float:
    value = _check_float("lam", lam)
    if not 0.0 <= value < math.inf:  # also refuses nan
        raise SelectionInputError(f"lam must be a finite number >= 0, got {lam!r}")
    return value


@dataclass(frozen=True)
class Prepared:
    x: Tensor                # (N, d) image features in the compute dtype, as given (not normalised)
    norms: Tensor            # (N, 1) their L2 norms
    labels: Tensor           # (N,) int64 in [0, C)
    t: Tensor | None         # (C, d) normalised class prototypes, or None
    counts: Tensor           # (C,) int64 pool images per class
    num_classes: int
    extras: dict = field(default_factory=dict)   # checked extra inputs (EXTRA_INPUTS), by name

    def unit(self, index) -> Tensor:
        """Normalised image rows x[index] / |x[index]|, e.g. (B, k) indices -> (B, k, d)."""
        return self.x[index] / self.norms[index]

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.x.dtype

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def tol(self) -> float:
        return tie_tolerance(self.x.dtype)


def prepare(image_features, labels, prototypes=None, *, num_classes: int | None = None,
            ipc: int | None = None, need_separation: bool = False) -> Prepared:
    """Validate and normalise the inputs of a score or sampler (see module docstring)."""
    feats = _as_tensor(image_features, "image_features")
    protos = None if prototypes is None else _as_tensor(prototypes, "prototypes")
    dtype = compute_dtype(feats.dtype, *(() if protos is None else (protos.dtype,)))
    x, norms = _features(feats, "image_features", dtype)
    y = _labels(labels, x.shape[0], x.device)

    t = None
    if protos is not None:
        t, t_norms = _features(protos, "prototypes", dtype, x.device)
        t = t / t_norms
        if t.shape[1] != x.shape[1]:
            raise SelectionInputError(
                f"prototypes have dimension {t.shape[1]} but image_features have dimension {x.shape[1]}")
        if num_classes is not None and num_classes != t.shape[0]:
            raise SelectionInputError(
                f"num_classes={num_classes} but prototypes has {t.shape[0]} rows (one per class)")
        num_classes = t.shape[0]
    if need_separation and (num_classes if num_classes is not None else int(y.max()) + 1) < 2:
        raise SelectionInputError(
            "separation needs at least two classes (min distance to the *other* class prototypes);"
            f" got {num_classes if num_classes is not None else 1}")

    lo, hi = int(y.min()), int(y.max())
    if lo < 0:
        row = int(torch.nonzero(y < 0).flatten()[0])
        raise SelectionInputError(f"labels[{row}] = {int(y[row])} is negative; labels must be in [0, num_classes)")
    if num_classes is None:
        num_classes = hi + 1
    elif hi >= num_classes:
        row = int(torch.nonzero(y >= num_classes).flatten()[0])
        raise SelectionInputError(
            f"labels[{row}] = {int(y[row])} is out of range [0, {num_classes})"
            + (" (one class per prototypes row)" if t is not None else ""))

    counts = torch.bincount(y, minlength=num_classes)  # (C,)
    empty = torch.nonzero(counts == 0).flatten()
    if empty.numel():
        raise SelectionInputError(
            f"class {int(empty[0])} has no pool images ({empty.numel()} empty class"
            f"{'es' if empty.numel() > 1 else ''} of {num_classes})")
    if ipc is not None:
        ipc = check_ipc(ipc)
        short = torch.nonzero(counts < ipc).flatten()
        if short.numel():
            c = int(short[0])
            raise SelectionInputError(
                f"class {c} has {int(counts[c])} pool images, fewer than ipc={ipc}"
                f" ({short.numel()} such class{'es' if short.numel() > 1 else ''})")
    return Prepared(x=x, norms=norms, labels=y, t=t, counts=counts, num_classes=num_classes)


def with_extras(p: Prepared, extras: dict | None, needs: tuple) -> Prepared:
    """p with the extra inputs a sampler needs, each checked (SelectionInputError naming it); others ignored."""
    extras = dict(extras or {})
    missing = [k for k in needs if k not in extras]
    if missing:
        raise SelectionInputError(f"this sampler needs {', '.join(missing)} ({'; '.join(EXTRA_INPUTS.get(k, '?') for k in missing)})")
    out = {}
    for key in needs:
        if key not in EXTRA_INPUTS:
            raise SelectionInputError(f"unknown extra input '{key}'; known: {sorted(EXTRA_INPUTS)}")
        value = _as_tensor(extras[key], key)
        if key == "real_centroids":
            t, t_norms = _features(value, key, p.dtype, p.device)
            if t.shape != (p.num_classes, p.dim):
                raise SelectionInputError(f"real_centroids must be ({p.num_classes}, {p.dim}), got {tuple(t.shape)}")
            out[key] = t / t_norms
        elif key == "real_labels":
            y = value.to(p.device)
            if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
                raise SelectionInputError(f"real_labels must be 1-D integers, got {tuple(y.shape)} {y.dtype}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= p.num_classes):
                raise SelectionInputError(f"real_labels must be in [0, {p.num_classes})")
            out[key] = y.long()
        else:                                              # difficulty / real_difficulty: values in [0, 1]
            v = value.to(device=p.device, dtype=p.dtype)
            if v.dim() != 1 or (key == "difficulty" and v.shape[0] != p.n):
                raise SelectionInputError(f"{key} must be 1-D" + (f" with {p.n} values" if key == "difficulty" else "")
                                          + f", got shape {tuple(v.shape)}")
            bad = ~(torch.isfinite(v) & (v >= 0) & (v <= 1))
            if bool(bad.any()):
                row = int(torch.nonzero(bad).flatten()[0])
                raise SelectionInputError(f"{key}[{row}] = {float(v[row])} is not a number in [0, 1]")
            out[key] = v
    if "real_difficulty" in out and "real_labels" in out and out["real_difficulty"].shape != out["real_labels"].shape:
        raise SelectionInputError("real_difficulty and real_labels must have one value per real image")
    return replace(p, extras=out)
