"""Devices and precision, shared by sampling, fine-tuning, encoding and evaluation.

    dev, dtype = resolve_device_dtype("auto", "float32")   # CUDA when present
    set_tf32(True)          # TF32 for float32 matmuls and convolutions on CUDA (no effect on a CPU)
    pin_on_cuda(trainer)    # pin index batches when a Lightning trainer runs on CUDA
    per_process_batch(8, trainer)   # a global batch split over the trainer's processes
"""

from __future__ import annotations

import torch

__all__ = ["set_tf32", "pin_on_cuda", "per_process_batch", "resolve_device_dtype", "DTYPES"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device_dtype(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """device auto: CUDA when present; dtype auto: float32 (what the original samplers run)."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    if dtype == "auto":
        return dev, torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"pool.dtype must be auto, {', '.join(DTYPES)}; got '{dtype}'")
    return dev, DTYPES[dtype]


def pin_on_cuda(trainer) -> bool:
    """Pin the index batches when training on CUDA: their copy to the device is then asynchronous."""
    device = getattr(getattr(trainer, "strategy", None), "root_device", None)
    return device is not None and device.type == "cuda"


def set_tf32(allow: bool = True) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions on CUDA, as facebookresearch/DiT's sample.py and
    Minimax's train_dit.py allow both. CUDA only: CPU float32 stays exact."""
    torch.backends.cuda.matmul.allow_tf32 = bool(allow)
    torch.backends.cudnn.allow_tf32 = bool(allow)


def per_process_batch(global_batch: int, trainer=None) -> int:
    """The per-process batch that makes the global batch what the config says, on any number of devices and
    nodes (Minimax's train_dit.py: global_batch_size // world_size, which must divide)."""
    world = trainer.world_size if trainer is not None else 1
    if global_batch % world:
        raise ValueError(f"generator.batch_size={global_batch} (the global batch) is not divisible by the "
                         f"{world} training processes (devices x nodes)")
    return global_batch // world
