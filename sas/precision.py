"""Precision switches shared by sampling, fine-tuning and evaluation.

    set_tf32(True)      # TF32 for float32 matmuls and convolutions on CUDA (no effect on a CPU)
"""

from __future__ import annotations

import torch

__all__ = ["set_tf32"]


def set_tf32(allow: bool = True) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions on CUDA, as facebookresearch/DiT's sample.py and
    Minimax's train_dit.py allow both. CUDA only: CPU float32 stays exact."""
    torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    torch.backends.cudnn.allow_tf32 = bool(allow)
