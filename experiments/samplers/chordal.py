"""A worked example of a new selection rule: SAS with the chordal distance |u - v| instead of the angle.

    python distill.py hydra.searchpath=[file://experiments/conf] sampler=sas_chordal
    python distill.py -m hydra.searchpath=[file://experiments/conf] sampler=sas,sas_chordal    # compare them

One Sampler subclass (this file) and one YAML file (experiments/conf/sampler/sas_chordal.yaml) are all a rule
needs: the pipeline builds it by _target_, sweeps it, writes its distilled set and manifest, evaluates it,
groups its W&B runs by the choice name and gives it a column in the comparison report.

The rule: relevance = -|u - t_y|, separation = min over c != y of |u - t_c| (unit vectors u, t), margin =
relevance + separation; then SAS's two stages (the top candidate_ratio of each class by margin, the
diversity walk). |u - v| = 2 sin(theta / 2) is monotone in the angle theta, but a sum of two such terms
does not rank images as the angular margin does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from sas.inputs import check_ratio
from sas.sampling import Sampler


@dataclass
class ChordalSAS(Sampler):
    candidate_ratio: float = 0.5
    name: ClassVar[str] = "sas_chordal"
    uses_prototypes: ClassVar[bool] = True          # needs the class prototypes
    uses_separation: ClassVar[bool] = True    # and at least two classes

    def __post_init__(self):
        super().__post_init__()
        self.candidate_ratio = check_ratio(self.candidate_ratio)

    def choose(self, p):
        u = p.unit(torch.arange(p.n, device=p.device))                        # (N, d) unit image features
        d = torch.cdist(u, p.t)                                                # (N, C) chordal distances
        own = p.labels[:, None]
        relevance = -d.gather(1, own)[:, 0]                                    # (N,)
        separation = d.scatter(1, own, torch.inf).min(1).values                # (N,)
        return self.two_stage(p, relevance + separation, self.candidate_ratio)
