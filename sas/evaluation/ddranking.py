"""DD-Ranking's fair scores of a distilled set (Li et al., "DD-Ranking: rethinking the evaluation of dataset
distillation"), per evaluation repeat, then mean and population std.

    s = ddranking_scores(full_hard=0.95, syn_hard=[0.80, 0.82], syn_protocol=[0.90, 0.91],
                         random_protocol=[0.88, 0.87], weight=0.5)
    s["hlr_mean"], s["ior_mean"], s["ddrs_mean"]

Accuracies are fractions (top-1 in [0, 1]):
  HLR  = acc(real, hard) - acc(distilled, hard)           hard-label recovery: lower is better
  IOR  = acc(distilled, protocol) - acc(random, protocol)  improvement over a random subset of the same pool
  DDRS = (e^a - e^-1) / (e - e^-1),  a = w * IOR - (1 - w) * HLR   (w = 0.5), in [0, 1] for a in [-1, 1]
As the `ddranking` package computes them (metrics/soft_label.py compute_metrics: one HLR / IOR / score per
evaluation run, repeat i against repeat i, then mean and std). We write the three lines instead of importing
the package: it pins numpy < 2 and scipy < 1.16 and pulls kornia, timm and pandas, and its soft-label losses
(KL with batchmean, soft cross-entropy) are what sas.evaluation.softlabel.soft_loss computes.
"""

from __future__ import annotations

import math

__all__ = ["ddrs", "ddranking_scores"]


def ddrs(hlr: float, ior: float, weight: float = 0.5) -> float:
    a = weight * ior - (1 - weight) * hlr
    return (math.exp(a) - math.exp(-1)) / (math.exp(1) - math.exp(-1))


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def ddranking_scores(full_hard: float, syn_hard: list[float], syn_protocol: list[float],
                     random_protocol: list[float], weight: float = 0.5) -> dict:
    """Per-repeat HLR / IOR / DDRS (repeat i of each list together) -> means, stds and the inputs."""
    n = min(len(syn_hard), len(syn_protocol), len(random_protocol))
    if n == 0:
        raise ValueError("DD-Ranking scores need at least one finished repeat of every evaluation")
    hlr = [full_hard - syn_hard[i] for i in range(n)]
    ior = [syn_protocol[i] - random_protocol[i] for i in range(n)]
    score = [ddrs(h, o, weight) for h, o in zip(hlr, ior)]
    out = {"weight": weight, "full_hard_top1": full_hard, "syn_hard_top1": syn_hard[:n],
           "syn_protocol_top1": syn_protocol[:n], "random_protocol_top1": random_protocol[:n],
           "hlr": hlr, "ior": ior, "ddrs": score}
    for key, values in (("hlr", hlr), ("ior", ior), ("ddrs", score)):
        out[f"{key}_mean"], out[f"{key}_std"] = _mean_std(values)
    return out
