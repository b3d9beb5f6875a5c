"""The presets with their real model ids, over published artifacts emulated at their real size, as a user without
internet runs them: prints each job's wall time and every warning line of its log (the target: none).

    python benchmarks/published.py               # real-size weights (DiT-XL/2 2.7 GB, ViT-B/32, ResNet-50, ...)
    python benchmarks/published.py --tiny        # the same layouts at test size: a quick check of this script
    python benchmarks/published.py --keep DIR    # keep the workspace (caches, outputs, logs) in DIR

Written with tests/published.py, in the layouts users download: a Hugging Face cache (facebook/DiT-XL-2-256 with
its 2022 config, stabilityai/sd-vae-ft-mse / -ema with the 2022 attention key names, open_clip's file for
ViT-B-32-quickgelu / openai), torchvision's resnet50-*.pth / resnet18-*.pth under TORCH_HOME, ImageWoof in the
ImageNet layout and as the fastai release (grayscale, CMYK, progressive and PNG-named-.JPEG files among them),
CIFAR-10 as torchvision's pickles. The hub endpoint is pointed at a closed port, as on a compute node without
internet: the jobs must notice at once and read the cache. Weights are random; the figures are times, not
accuracies.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SHRINK = ["sampler.ipc=1", "sampler.pool_mult=2", "eval.epochs=1", "eval.evaluations=1", "eval.repeats=1",
          "logger.mode=offline", "pictures=false"]
WARNING = re.compile(r"warn|traceback|could not reach|not expected|mismatch", re.IGNORECASE)
INTENDED = ("reading the fastai",)      # sas's own notice that the fastai splits are not the paper's


def write_artifacts(ws: Path, real_size: bool) -> None:
    import published as P
    from sas.data.classes import get_class_table

    woof = get_class_table("imagewoof")
    started = time.perf_counter()
    P.dit_pipeline(ws / "hf", real_size=real_size)
    P.sd_vae(ws / "hf", "stabilityai/sd-vae-ft-mse", real_size=real_size)
    P.sd_vae(ws / "hf", "stabilityai/sd-vae-ft-ema", real_size=real_size, seed=3)
    P.open_clip_tag(ws / "hf")
    for weights in ("ResNet50_Weights.IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        P.torchvision_weights(ws / "torch", weights)
    size = 320 if real_size else 40
    P.imagenet_subset(ws / "data" / "imagenet", woof, train_per_class=2, val_per_class=2, size=size)
    P.fastai_release(ws / "data", woof, train_per_class=2, val_per_class=2, size=size)
    P.cifar10_batches(ws / "data" / "cifar10")
    print(f"artifacts written in {time.perf_counter() - started:.0f} s: {ws}")


def jobs(real_size: bool) -> list[tuple[str, list[str], bool]]:
    """(what, command, expected to succeed)."""
    steps = ["pool.source.num_inference_steps=2"]
    small = [] if real_size else ["eval.image_size=32", "model=convnet_tiny"]
    tune = ["generator.max_steps=2", "generator.batch_size=2", "generator.sample_every_n_steps=null",
            "train_logger.mode=offline", "trainer.enable_progress_bar=false"] + \
        ([] if real_size else ["generator.image_size=32"])
    distill = [sys.executable, str(ROOT / "distill.py")]
    return [
        ("DiT pool, CLIP, IDC (pool=dit)", distill + ["pool=dit", *steps, *SHRINK, *small], True),
        ("Minimax fine-tuning (train.py)", [sys.executable, str(ROOT / "train.py"), *tune], True),
        ("Minimax pool (the default preset)", distill + [*steps, *SHRINK, *small], True),
        ("K-Center on ResNet-50 (table1_real)", distill + ["experiment=table1_real", "sampler=kcenter_real",
                                                          *SHRINK, *small], True),
        ("ImageNet teacher (eval=softlabel)", distill + [
            "pool=dit", *steps, "eval=softlabel", "eval.teacher_weights=torchvision:ResNet18_Weights.IMAGENET1K_V1",
            *SHRINK, *small], True),
        ("fastai release layout", distill + ["pool=dit", *steps, "dataset.layout=fastai", *SHRINK, *small], True),
        ("CIFAR-10 pickles not the release", distill + ["dataset=cifar10", "pool=real", "sampler=none",
                                                        "model=resnet_ap10_cifar", "eval=idc_cifar", *SHRINK], False),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="test-size weights and images")
    ap.add_argument("--keep", default=None, help="workspace folder (default: a temporary one, removed)")
    args = ap.parse_args()
    ws = Path(args.keep or tempfile.mkdtemp(prefix="sas-published-"))
    env = {**os.environ, "HF_HOME": str(ws / "hf"), "TORCH_HOME": str(ws / "torch"),
           "SAS_CACHE_DIR": str(ws / "cache"), "SAS_DATA_DIR": str(ws / "data"), "WANDB_MODE": "offline",
           "HF_ENDPOINT": "http://127.0.0.1:9"}                 # no hub: a compute node without internet
    env.pop("HF_HUB_OFFLINE", None)
    os.environ.update({k: env[k] for k in ("HF_HOME", "TORCH_HOME")})
    write_artifacts(ws, real_size=not args.tiny)
    rows = []
    for what, cmd, ok in jobs(real_size=not args.tiny):
        started = time.perf_counter()
        proc = subprocess.run([*cmd, f"paths.output_root={ws / 'outputs'}"], env=env, cwd=ws, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - started
        log = proc.stdout + proc.stderr
        (ws / "logs").mkdir(exist_ok=True)
        (ws / "logs" / f"{len(rows)}.log").write_text(log)
        flagged = [line.strip()[:160] for line in log.splitlines()
                   if WARNING.search(line) and not any(k in line for k in INTENDED)]
        if not ok:                                            # a refusal: one clear message, no traceback
            flagged = [line for line in flagged if "Traceback" in line]
            failed = [line for line in log.splitlines() if "job failed:" in line]
            what += f" -> {failed[-1].split('job failed:')[1][:150].strip() if failed else 'no message'}"
        rows.append((what, seconds, (proc.returncode == 0) == ok, flagged))
        print(f"{what}: {seconds:.0f} s, exit {proc.returncode}, {len(flagged)} warning lines", flush=True)
    print("\n| job | wall s | as expected | warning lines |\n|---|---|---|---|")
    for what, seconds, expected, flagged in rows:
        print(f"| {what} | {seconds:.0f} | {'yes' if expected else 'NO'} | {len(flagged)} |")
        for line in flagged:
            print(f"|   | | | {line} |")
    print(f"\nworkspace: {ws} (logs/)")


if __name__ == "__main__":
    main()
