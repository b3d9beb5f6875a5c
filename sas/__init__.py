"""sas: semantic-aware sampling for generative dataset distillation.

    from sas.sampling import sas_select
    idx = sas_select(image_features, labels, prototypes, ipc=10)

`sas.scores` and `sas.sampling` import nothing heavier than torch; the rest of
the stack (pools, encoders, Lightning evaluation) lives in its own subpackages.
"""

__version__ = "0.1.0"
