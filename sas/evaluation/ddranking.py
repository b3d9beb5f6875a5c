"""DD-Ranking's fair scores of a distilled set (Li et al., "DD-Ranking: rethinking the evaluation of dataset
distillation"; package `ddranking` 0.2.0, NUS-HPC-AI-Lab/DD-Ranking), per evaluation repeat, then mean and
population std.

    s = ddranking_scores(full_hard=0.95, syn_hard=[0.80, 0.82], syn_protocol=[0.90, 0.91],
                         random_real=[0.88, 0.87], random_pool=[0.86, 0.89], weight=0.5)
    s["hlr_mean"], s["ior_mean"], s["ddrs_mean"], s["lrs_mean"], s["ior_pool_mean"]

Accuracies come in as fractions (top-1 in [0, 1]); per repeat i:
  HLR      = acc(real, hard) - acc(distilled, hard)                    hard-label recovery, lower is better
  IOR      = acc(distilled, protocol) - acc(random real subset_i, protocol)
             improvement over IPC random real train images per class, a new draw per repeat, as the package
             (utils/data.py get_random_images; metrics/soft_label.py _get_random_data_helper(eval_iter=i))
  IOR_pool = acc(distilled, protocol) - acc(random subset of the same pool, protocol)      ours: the selector's
             gain over chance on the same generated pool
  DDRS     = (e^a - e^-1) / (e - e^-1), a = w IOR - (1 - w) HLR, on fractions: the paper's score, in [0, 1] for
             a in [-1, 1]
  LRS      = the same formula on percentages (the package's accuracy() returns percent and compute_metrics
             forms alpha = lrs_lambda * ior - (1 - lrs_lambda) * hlr from them): what `ddranking` 0.2.0
             reports as label_robust_score; it is far from DDRS whenever HLR or IOR exceed a point or two
Mean and std over repeats (np.std: population), as compute_metrics. HLR and IOR are reported in percentage
points (pp), DDRS and LRS as numbers; every column header says which.
"""

from __future__ import annotations

import math

__all__ = ["ddrs", "lrs", "ddranking_scores", "FULL_DATA_CACHE", "cached_full_accuracy", "model_name", "SCORES",
           "PERCENT_POINTS"]

SCORES = ("hlr", "ior", "ior_pool", "ddrs", "lrs")     # the per-repeat scores ddranking_scores returns
PERCENT_POINTS = ("hlr", "ior", "ior_pool")             # differences of accuracies: shown in percentage points

# The package's cached acc(real, hard) (ddranking/utils/train_and_eval.py REAL_DATA_ACC_CACHE, percent), by
# (our dataset, our model choice); the package measured it on its own ImageNet-1K pipeline (get_dataset: images
# resized to 64 px) with REAL_DATA_TRAINING_CONFIG (SGD lr 0.1, momentum 0.9, wd 1e-4, batch 512, step x0.1 every
# 30 epochs, 90 epochs).
FULL_DATA_CACHE = {
    ("imagenet1k", "resnet18_bn"): (56.5, "ddranking 0.2.0 REAL_DATA_ACC_CACHE['ImageNet1K-ResNet-18-BN'] (percent; "
                                          "the package's 64-px ImageNet-1K pipeline, 90-epoch SGD recipe)"),
}


def _score(a: float) -> float:
    return (math.exp(a) - math.exp(-1)) / (math.exp(1) - math.exp(-1))


def ddrs(hlr: float, ior: float, weight: float = 0.5) -> float:
    """The paper's DDRS from HLR and IOR as fractions."""
    return _score(weight * ior - (1 - weight) * hlr)


def lrs(hlr_pct: float, ior_pct: float, weight: float = 0.5) -> float:
    """The package's label-robust score from HLR and IOR in percent (metrics/soft_label.py compute_metrics)."""
    return _score(weight * ior_pct - (1 - weight) * hlr_pct)


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def model_name(model: dict) -> str | None:
    """The package's name for a model config it has cached figures of (torchvision's ResNet-18 with batch norm:
    conf/model/resnet18_bn), else None."""
    target = str(model.get("_target_", ""))
    if target.endswith("resnet.resnet") and model.get("depth", 18) == 18 and model.get("norm") == "batch":
        return "resnet18_bn"
    return None


def cached_full_accuracy(dataset: str, model: str | None) -> tuple[float, str]:
    """(acc(real, hard) as a fraction, its source) from the package's cache; KeyError naming what it holds."""
    if (dataset, model) not in FULL_DATA_CACHE:
        raise KeyError(f"ddranking_full=cached: the package caches no full-data accuracy for dataset {dataset} "
                       f"with model {model} (it has {sorted(FULL_DATA_CACHE)}); use ddranking_full=train")
    pct, source = FULL_DATA_CACHE[(dataset, model)]
    return pct / 100, source


def ddranking_scores(full_hard: float, syn_hard: list[float], syn_protocol: list[float], random_real: list[float],
                     random_pool: list[float] | None = None, weight: float = 0.5) -> dict:
    """Per-repeat HLR / IOR / IOR_pool / DDRS / LRS (repeat i of each list together) -> means, stds and inputs."""
    lists = [syn_hard, syn_protocol, random_real] + ([random_pool] if random_pool is not None else [])
    n = min(len(x) for x in lists)
    if n == 0:
        raise ValueError("DD-Ranking scores need at least one finished repeat of every evaluation")
    hlr = [full_hard - syn_hard[i] for i in range(n)]
    ior = [syn_protocol[i] - random_real[i] for i in range(n)]
    out = {"weight": weight, "full_hard_top1": full_hard, "syn_hard_top1": syn_hard[:n],
           "syn_protocol_top1": syn_protocol[:n], "random_real_top1": random_real[:n],
           "hlr": hlr, "ior": ior, "ddrs": [ddrs(h, o, weight) for h, o in zip(hlr, ior)],
           "lrs": [lrs(100 * h, 100 * o, weight) for h, o in zip(hlr, ior)]}
    if random_pool is not None:
        out["random_pool_top1"] = random_pool[:n]
        out["ior_pool"] = [syn_protocol[i] - random_pool[i] for i in range(n)]
    for key in SCORES:
        if key in out:
            out[f"{key}_mean"], out[f"{key}_std"] = _mean_std(out[key])
    return out
