"""What each stage of a run costs: wall seconds, CPU seconds, peak host memory and, where a CUDA device is
used, device seconds and peak device memory, recorded into a dict as the stage runs.

    costs = {}
    with measured(costs, "encode"):
        ...
    costs["encode"]  # {"wall_s", "cpu_s", "host_peak_mib", "device_s", "device_peak_mib"}

wall_s: elapsed seconds; cpu_s: the process's CPU seconds (all threads); host_peak_mib: the highest resident
set size of the process during the stage (Linux: the kernel's high-water mark VmHWM, reset at the stage's start
through /proc/self/clear_refs; elsewhere the process's peak so far); device_s: the stage's seconds with the CUDA
device synchronised at both ends (None without CUDA); device_peak_mib: the most device memory torch allocated
during the stage (its peak counter reset at the start; None without CUDA). Nothing samples in the background,
so measuring costs nothing. A stage run again under the same name adds its seconds and keeps the highest peaks.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

__all__ = ["measured", "COST_KEYS"]

COST_KEYS = ("wall_s", "cpu_s", "host_peak_mib", "device_s", "device_peak_mib")


def _reset_host_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                 # 5: reset the peak RSS (Linux >= 4.0)
    except OSError:
        pass


def _host_peak_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024       # kB
    except OSError:
        pass
    import resource
    import sys
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024     # bytes on macOS, kB elsewhere


@contextmanager
def measured(costs: dict, stage: str):
    import torch

    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    _reset_host_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        cuda = cuda or (torch.cuda.is_available() and torch.cuda.is_initialized())
        if cuda:
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        now = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "host_peak_mib": round(_host_peak_mib(), 1),
               "device_s": round(wall, 3) if cuda else None,
               "device_peak_mib": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1) if cuda else None}
        before = costs.get(stage)
        if before:
            for key in ("wall_s", "cpu_s", "device_s"):
                now[key] = None if now[key] is None else round(now[key] + (before.get(key) or 0), 3)
            for key in ("host_peak_mib", "device_peak_mib"):
                now[key] = max((x for x in (now[key], before.get(key)) if x is not None), default=None)
        costs[stage] = now
