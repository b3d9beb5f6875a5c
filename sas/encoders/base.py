"""What the encode stage needs of an image encoder; the config group `encoder` builds only subclasses.

    class MyEncoder(Encoder): ...     # key_config, encode_files, encode_tensors (+ text_prototypes), a
                                      # `prototypes` field: text | visual | none
"""

from __future__ import annotations

__all__ = ["Encoder"]


class Encoder:
    def key_config(self) -> dict:
        """What decides the embeddings (weights by what they resolve to, preprocessing): the cache key."""
        raise NotImplementedError

    def encode_files(self, files: list[str], progress: bool = False):
        """(N, d) L2-normalised embeddings of image files, in their order."""
        raise NotImplementedError

    def encode_tensors(self, images):
        """(B, d) L2-normalised embeddings of (B, 3, H, W) uint8 images."""
        raise NotImplementedError

    def text_prototypes(self, class_names: list[str]):
        """(C, d) text prototypes; encoders without a text tower say so."""
        raise ValueError(f"{type(self).__name__} has no text tower: set encoder.prototypes=visual")
