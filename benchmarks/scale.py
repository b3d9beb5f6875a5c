"""Scale checks on one machine: 1,000 classes, several processes, a 1M-image selection.

    python benchmarks/scale.py                  # all three
    python benchmarks/scale.py --only classes   # (a) | procs (b) | select (c)

(a) classes: the ImageNet-1K smoke preset (experiment=imagenet1k_smoke: tiny DiT pool, tiny CLIP, soft-label
    evaluation with a teacher trained here) on a synthetic ImageNet-layout tree of real digits (2 train and
    1 val image per class), for the first 100 classes (dataset=folder) and for all 1,000 (dataset=imagenet1k).
    Each run is its own process: wall time and peak resident memory, their 1,000 / 100 ratios, and the ratio of
    what each adds above a 10-class run (fixed costs: imports, model builds), which is about 11 when the
    per-class work grows linearly.
(b) procs: the same tiny-DiT pool (10 classes x 64 images) drawn by 1 process with 1 thread, 1 process with 2
    threads and 2 gloo processes with 1 thread each (sas.shards stripes); the pools are checked byte-identical.
(c) select: benchmarks/selection.py --cases in1k-1m (the 1M-image pool: time against the matmul floor, peak
    memory against one N x N matrix).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_CLASS = 64                     # (b): tiny-DiT images per class, 10 classes
PY = sys.executable


def machine() -> str:
    import torch
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def write_tree(root: Path, wnids: list[str]) -> None:
    """ImageNet layout: root/{train,val}/<wnid>/*.png, real digit images tinted per class (16 px)."""
    import numpy as np
    from PIL import Image

    from sas.data.real import load_digits_split

    digits = load_digits_split("train", 16).images.permute(0, 2, 3, 1).numpy()       # (N, 16, 16, 3)
    rng = np.random.default_rng(0)
    for c, wnid in enumerate(wnids):
        tint = rng.integers(60, 255, 3)
        for split, n in (("train", 2), ("val", 1)):
            d = root / split / wnid
            d.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                img = (digits[(c * 3 + k) % len(digits)].astype(np.float32) * tint / 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{k}.png")


def timed_process(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one child process (measured by a fresh parent)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
             "dt = time.perf_counter() - t; "
             "sys.stderr.write(r.stderr[-3000:] if r.returncode else ''); "
             "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, r.returncode)")
    out = subprocess.run([PY, "-c", probe, *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    if len(out.stdout.split()) != 3:
        raise SystemExit(f"the probe failed:\n{out.stderr[-3000:]}")
    wall, rss, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return float(wall), float(rss)


def classes_check(tmp: Path) -> None:
    from sas.data.classes import get_class_table

    table = get_class_table("imagenet1k")
    data = tmp / "data"
    write_tree(data / "imagenet", list(table.wnids))
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "2"}
    common = ["experiment=imagenet1k_smoke", f"paths.data_dir={data}", "logger.mode=disabled"]
    rows = {}
    for n in (10, 100, 1000):
        extra = ([] if n == 1000 else
                 ["dataset=folder", "dataset.name=in100", f"dataset.root={data / 'imagenet'}", "dataset.image_size=16",
                  "dataset.workers=2", "pool.source.class_ids=label",
                  "dataset.classes=[" + ",".join(f"'{w}'" for w in table.wnids[:n]) + "]"])
        if n < 1000:                                   # the folder tree holds all 1,000: a copy with the first n
            sub = tmp / f"in{n}"
            for split in ("train", "val"):
                (sub / split).mkdir(parents=True, exist_ok=True)
                for w in table.wnids[:n]:
                    (sub / split / w).symlink_to(data / "imagenet" / split / w)
            extra = [e.replace(str(data / "imagenet"), str(sub)) for e in extra] + ["dataset.follow_symlinks=true"]
        cmd = [PY, str(ROOT / "distill.py"), *common, *extra, f"paths.cache_dir={tmp / f'cache{n}'}",
               f"hydra.run.dir={tmp / f'run{n}'}"]
        rows[n] = timed_process(cmd, env)
        from sas.run_folder import RunFolder
        res = RunFolder(tmp / f"run{n}").results()
        print(f"  {n:>5} classes: {rows[n][0]:6.1f} s wall, peak RSS {rows[n][1]:7.0f} MiB "
              f"({res['pool_files']} pool images, top-1 {res['best_top1_mean']:.3f})", flush=True)
    print(f"  ratio 1,000 / 100 classes: wall x{rows[1000][0] / rows[100][0]:.2f}, "
          f"peak memory x{rows[1000][1] / rows[100][1]:.2f} (classes x10)")
    print(f"  above the 10-class run (imports, model builds): wall x"
          f"{(rows[1000][0] - rows[10][0]) / (rows[100][0] - rows[10][0]):.1f}, peak memory x"
          f"{(rows[1000][1] - rows[10][1]) / max(rows[100][1] - rows[10][1], 1):.1f} (linear: about 11)")


def _rank(rank: int, world: int, init: str, cache: str, threads: int):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    from sas.pools.base import PoolContext
    src, table = _tiny_source()
    src.check(table)                                           # model built before the clock starts
    if world > 1:
        dist.barrier()
    t = time.perf_counter()
    src.paths(PER_CLASS, PoolContext(table, cache_dir=cache, seed=0, progress=False))
    Path(f"{cache}.rank{rank}.seconds").write_text(str(time.perf_counter() - t))
    if world > 1:
        dist.destroy_process_group()


def _tiny_source():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from sas.data.classes import get_class_table
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(overrides=["+pool=dit_tiny", "pool.source.batch=8"])
    return instantiate(cfg.pool.source, _convert_="all"), get_class_table("digits")


def _spawned(world: int, threads: int, tmp: Path, tag: str) -> float:
    import torch.multiprocessing as mp
    cache = tmp / f"pool-{tag}"
    if world == 1:
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_rank, args=(0, 1, "", str(cache), threads))
        p.start()
        p.join()
    else:
        mp.spawn(_rank, args=(world, str(tmp / f"init-{tag}"), str(cache), threads), nprocs=world, join=True)
    return max(float(Path(f"{cache}.rank{r}.seconds").read_text()) for r in range(world))   # the slowest rank


def procs_check(tmp: Path) -> None:
    runs = {(1, 1): _spawned(1, 1, tmp, "1x1"), (1, 2): _spawned(1, 2, tmp, "1x2"), (2, 1): _spawned(2, 1, tmp, "2x1")}
    for (w, th), sec in runs.items():
        n = 10 * PER_CLASS
        print(f"  {w} process(es) x {th} thread(s): {sec:6.1f} s for {n} images ({n / sec:5.1f} img/s; "
              f"generation and PNG writing, the slowest rank)")
    pngs = {tag: sorted(p.relative_to(tmp / f"pool-{tag}") for p in (tmp / f"pool-{tag}").rglob("*.png"))
            for tag in ("1x1", "2x1")}
    same = pngs["1x1"] == pngs["2x1"] and all(
        (tmp / "pool-1x1" / p).read_bytes() == (tmp / "pool-2x1" / p).read_bytes() for p in pngs["1x1"])
    print(f"  2 processes vs 1 (1 thread each): speed-up x{runs[(1, 1)] / runs[(2, 1)]:.2f}; "
          f"vs 1 process x 2 threads: x{runs[(1, 2)] / runs[(2, 1)]:.2f}; pools byte-identical: {same}")


def select_check() -> None:
    subprocess.run([PY, str(ROOT / "benchmarks" / "selection.py"), "--cases", "in1k-1m", "--repeats", "1"],
                   cwd=ROOT, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("classes", "procs", "select"))
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "classes"):
            print("(a) every stage, 100 vs 1,000 classes (experiment=imagenet1k_smoke):", flush=True)
            classes_check(tmp)
        if args.only in (None, "procs"):
            print(f"(b) pool generation over processes (tiny DiT, 10 classes x {PER_CLASS}):", flush=True)
            procs_check(tmp)
    if args.only in (None, "select"):
        print("(c) selection of a 1M-image pool:", flush=True)
        select_check()


if __name__ == "__main__":
    main()
