"""Counting the host-device synchronisations of training steps, on any device (a CPU included): the tool
of the benchmarks (evaluation.py, pools.py) and tests/test_syncs.py, not part of the library.

    with SyncCounter() as syncs:
        step()
    syncs.count, syncs.calls          # total, and {op name: count}

    trainer = pl.Trainer(callbacks=[StepSyncs()]); trainer.fit(...)
    StepSyncs.per_step                 # one count per steady-state step (batch start to batch start)

On a CPU nothing waits, so what is counted is every call that WOULD make the
host wait for a CUDA device: reading values (item, tolist, numpy, .cpu(),
bool / int / float of a tensor), data-dependent shapes (nonzero, boolean-mask
indexing or assignment, masked_select, unique, repeat_interleave), and tensors
built on a device from host data (torch.tensor / as_tensor with a device:
a copy from pageable memory). Tensors that legitimately live on the host
should stay Python numbers or lists inside a step. On CUDA,
torch.cuda.set_sync_debug_mode("warn") tells the rest.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["SyncCounter", "StepSyncs"]

_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__", "nonzero",
          "masked_select", "unique", "unique_consecutive", "repeat_interleave"}
_BUILDS = {"tensor", "as_tensor"}


def _bool_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


def _crossing(t: torch.Tensor, args, kwargs) -> bool:
    """A .to() that copies device -> host, or pageable host -> device without non_blocking."""
    target = next((torch.device(a) for a in (*args, kwargs.get("device"))
                   if isinstance(a, (str, torch.device)) and str(a) not in ("", "None")), None)
    if target is None or target.type == t.device.type:
        return False
    if target.type == "cpu":
        return True
    return not (t.is_pinned() and kwargs.get("non_blocking", False))


class SyncCounter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()

    @property
    def count(self) -> int:
        return sum(self.calls.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _READS and not (name == "repeat_interleave" and kwargs.get("output_size") is not None):
            self.calls[name] += 1
        elif name in _BUILDS and kwargs.get("device") is not None:
            self.calls[f"{name}(device=...)"] += 1
        elif name in ("__getitem__", "__setitem__") and len(args) > 1 and _bool_index(args[1]):
            self.calls[f"{name}[bool mask]"] += 1
        elif name == "to" and isinstance(args[0], torch.Tensor) and _crossing(args[0], args[1:], kwargs):
            self.calls["to(device <-> host)"] += 1
        return func(*args, **kwargs)


def _step_syncs_callback():
    import pytorch_lightning as pl

    class StepSyncs(pl.Callback):
        """Counts, per training step, the syncs between one batch start and the next (the whole step:
        batch transfer, forward, backward, optimiser, EMA and logging callbacks)."""

        def __init__(self):
            self.per_step: list[Counter] = []
            self._counter = None

        def _close(self):
            if self._counter is not None:
                self._counter.__exit__(None, None, None)
                self.per_step.append(self._counter.calls)
                self._counter = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self._close()
            self._counter = SyncCounter().__enter__()

        def on_train_end(self, trainer, pl_module):
            self._close()

        def on_exception(self, trainer, pl_module, exception):
            self._close()

    return StepSyncs


def __getattr__(name):
    """StepSyncs is built on first use, so importing SyncCounter does not import Lightning."""
    if name == "StepSyncs":
        globals()["StepSyncs"] = _step_syncs_callback()
        return globals()["StepSyncs"]
    raise AttributeError(name)
