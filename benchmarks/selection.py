"""Speed and peak memory of `sas_select` against the unavoidable work.

    python benchmarks/selection.py                    # all cases on the CPU
    python benchmarks/selection.py --device cuda      # the same on a GPU
    python benchmarks/selection.py --cases woof --repeats 50

Cases (d = 512, float32, pool = 4 x IPC per class as in the paper):
    woof      10 classes x 200 images, IPC 50   (the paper's 2,000-image ImageWoof pool)
    in1k      1,000 classes x 200, IPC 50       (an ImageNet-1K pool, 200,000 images)
    in1k-1m   1,000 classes x 1,000, IPC 250    (1M images)

"Unavoidable work" is what any exact implementation must compute on the same
data: the image-by-prototype similarity matrix (N x C) and the per-class
candidate Gram matrices (C x k x k), as plain torch matmuls. Each case runs in
its own process so that peak memory is that case's alone: on the CPU the rise
of the process's peak resident memory over its resident memory before the
call; on CUDA the rise of max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

CASES = {
    "woof": dict(classes=10, per_class=200, ipc=50),
    "in1k": dict(classes=1000, per_class=200, ipc=50),
    "in1k-1m": dict(classes=1000, per_class=1000, ipc=250),
}
DIM = 512


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _make_pool(classes, per_class, device, seed=0):
    """CLIP-like pool built in place, so building it leaves no transient peak behind."""
    import torch
    g = torch.Generator(device=device).manual_seed(seed)
    text = torch.randn(classes, DIM, generator=g, device=device)             # (C, d)
    labels = torch.arange(classes, device=device).repeat_interleave(per_class)  # (N,)
    feats = torch.randn(classes * per_class, DIM, generator=g, device=device)  # (N, d)
    for start in range(0, feats.shape[0], 1 << 16):
        feats[start:start + (1 << 16)].add_(text[labels[start:start + (1 << 16)]], alpha=1.5)
    return feats, labels, text


def _sync(device):
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device, repeats):
    out = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out), min(out)


def run_case(name: str, device: str, repeats: int) -> dict:
    import torch
    from sas import scores
    from sas.sampling import sas_select

    spec = CASES[name]
    C, n, ipc = spec["classes"], spec["per_class"], spec["ipc"]
    k = max(ipc, -(-n // 2))  # candidates per class at candidate_ratio 0.5
    feats, labels, text = _make_pool(C, n, device)
    N = feats.shape[0]

    chunk = min(scores.ROW_CHUNK, N)
    per_block = max(1, scores.BLOCK_ELEMENTS // (k * max(k, DIM)))
    sim_buf = torch.empty(chunk, C, device=device)
    gram_buf = torch.empty(min(per_block, C), k, k, device=device)
    cand = feats.view(C, n, DIM)[:, :k]  # (C, k, d) stand-in candidates

    def unavoidable():
        # image x prototype similarity, row chunks into one reused buffer (no N x C in full)
        for start in range(0, N, chunk):
            rows = feats[start:start + chunk]
            torch.matmul(rows, text.T, out=sim_buf[:rows.shape[0]])
        # per-class candidate Gram matrices, blocks of classes into one reused buffer
        for c0 in range(0, C, per_block):
            blk = cand[c0:c0 + per_block]
            torch.bmm(blk, blk.mT, out=gram_buf[:blk.shape[0]])

    def select():
        return sas_select(feats, labels, text, ipc)

    # first call: peak memory (and warm-up)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        idx = select()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _rss_bytes()
        idx = select()
        peak = max(0, _peak_rss_bytes() - base)
    assert idx.numel() == C * ipc
    unavoidable()  # warm-up
    t_sel, t_sel_min = _time(select, device, repeats)
    t_un, t_un_min = _time(unavoidable, device, repeats)
    return dict(case=name, device=device, classes=C, per_class=n, N=N, ipc=ipc, candidates=k,
                select_s=t_sel, select_min_s=t_sel_min, unavoidable_s=t_un, unavoidable_min_s=t_un_min,
                ratio=t_sel / t_un, peak_extra_mib=peak / 2 ** 20,
                input_mib=(feats.numel() + text.numel()) * 4 / 2 ** 20,
                nxn_mib=N * N * 4 / 2 ** 20, repeats=repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default: 30 / 5 / 2 by size)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child process: run one case, print JSON
    args = ap.parse_args()

    if args.one:
        print(json.dumps(run_case(args.one, args.device, args.repeats)))
        return

    import torch
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    header = (f"{'case':<9} {'N':>9} {'IPC':>4} {'sas_select':>11} {'unavoidable':>12} {'ratio':>6} "
              f"{'peak extra':>11} {'inputs':>9} {'an NxN f32':>11}")
    print(header)
    print("-" * len(header))
    default_repeats = {"woof": 30, "in1k": 5, "in1k-1m": 2}
    for name in args.cases:
        repeats = args.repeats or default_repeats[name]
        cmd = [sys.executable, __file__, "--one", name, "--device", args.device, "--repeats", str(repeats)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        fmt_t = lambda s: f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"  # noqa: E731
        fmt_m = lambda m: f"{m:.0f} MiB" if m < 1024 else f"{m / 1024:.1f} GiB"  # noqa: E731
        print(f"{name:<9} {r['N']:>9,} {r['ipc']:>4} {fmt_t(r['select_s']):>11} {fmt_t(r['unavoidable_s']):>12} "
              f"{r['ratio']:>5.2f}x {fmt_m(r['peak_extra_mib']):>11} {fmt_m(r['input_mib']):>9} "
              f"{fmt_m(r['nxn_mib']):>11}")
    print("times are medians over repeats; ratio = sas_select / unavoidable work on the same data")


if __name__ == "__main__":
    main()
