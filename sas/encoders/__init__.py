"""Semantic encoders (one file each), prototypes, and the on-disk embedding cache.

    from sas.encoders.clip import OpenCLIPEncoder     # CLIP (open_clip): the paper's encoder
    from sas.encoders.domain import DomainEncoder     # a CNN trained on the real data
    from sas.encoders.cache import encode_pool, visual_prototypes
"""
