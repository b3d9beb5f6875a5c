"""A quiet console for the command-line jobs: progress bars and results, not library noise.

    from sas.console import quiet
    quiet()        # distill.py and train.py call it first

Lightning's info lines (devices found, tips, "fit stopped", estimating batches)
and a few warnings that say nothing about the run are dropped; warnings and
errors from every library, and the jobs' own messages, stay. SAS_VERBOSE=1
keeps everything.
"""

from __future__ import annotations

import logging
import os
import warnings

__all__ = ["quiet"]

_NOISE = (
    ".*treespec.*",                                             # a deprecation inside Lightning's own code
    r'.*ckpt_path="last"\) is set, but there is no last checkpoint.*',   # a first run has none: expected
    ".*does not have many workers.*",                           # our loaders yield indices: by design
    ".*smaller than the logging interval.*",                    # tiny distilled sets: few steps per epoch
    ".*You're using the WeightAveraging callback.*",
    r".*module\(s\) in eval mode at the start of training.*",     # the soft-label teacher: frozen by design
)


def quiet() -> None:
    if os.environ.get("SAS_VERBOSE"):
        return
    # Lightning sets its package loggers to INFO when imported, so the module loggers that speak are set
    # too; library INFO on the root logger (open_clip's model-loading lines) goes, `sas` keeps its own
    for name in ("pytorch_lightning", "lightning_fabric", "pytorch_lightning.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "pytorch_lightning.accelerators.cuda",
                 "pytorch_lightning.callbacks.model_summary", "lightning_fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("sas").setLevel(logging.INFO)
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
