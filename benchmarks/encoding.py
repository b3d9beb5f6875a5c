"""Speed of pool encoding (the scoring input of SAS).

    python benchmarks/encoding.py                 # CPU: 200 PNGs (256 px), CLIP ViT-B/32 architecture
    python benchmarks/encoding.py --gpu --n 2000  # GPU: the 2,000-image ImageWoof pool

Prints, for the `pil` path (open_clip's own preprocessing in threads) and the
`tensor` path (threaded decode, batched resize/crop/normalise on the device):
end-to-end time from PNG files to normalised embeddings, and the model-only
time on already preprocessed tensors; their ratio is the cost of getting
images into the model. Weights are random (no download): the arithmetic is
the same as with the OpenAI weights. The paper reports 18 s to score a
2,000-image pool on an RTX A6000.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_pngs(folder: Path, n: int, size: int = 256) -> list[str]:
    from PIL import Image
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    files = []
    for i in range(n):  # smooth-ish images compress like generated ones, not like noise
        img = np.roll(base, i * 7, axis=1) // 2 + np.linspace(0, 120, size, dtype=np.uint8)[None, :, None]
        p = folder / f"{i:05d}.png"
        Image.fromarray(img).save(p)
        files.append(str(p))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="images (CPU default 200, GPU default 2000)")
    ap.add_argument("--model", default="ViT-B-32")
    args = ap.parse_args()
    from sas.encoders.clip import OpenCLIPEncoder

    device = "cuda" if args.gpu else "cpu"
    n = args.n or (2000 if args.gpu else 200)
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if args.gpu else ""))
    with tempfile.TemporaryDirectory() as d:
        files = make_pngs(Path(d), n)
        for mode in ("pil", "tensor"):
            enc = OpenCLIPEncoder(model=args.model, pretrained=None, preprocess=mode, device=device,
                                  batch_size=500 if args.gpu else 100, workers=16)
            enc.encode_files(files[:8])  # load + warm-up
            model, preprocess, _, dev = enc._load()
            sync = torch.cuda.synchronize if args.gpu else (lambda: None)
            sync()
            t0 = time.perf_counter()
            feats = enc.encode_files(files)
            sync()
            end_to_end = time.perf_counter() - t0
            pixels = torch.randn(n, 3, 224, 224)
            sync()
            t0 = time.perf_counter()
            for i in range(0, n, enc.batch_size):
                enc._encode_batch(pixels[i:i + enc.batch_size])
            sync()
            model_only = time.perf_counter() - t0
            assert feats.shape[0] == n
            print(f"  {args.model} {mode:<6}: {n} PNGs end to end {end_to_end:6.2f} s, model only {model_only:6.2f} s,"
                  f" ratio {end_to_end / model_only:5.2f}x")


if __name__ == "__main__":
    main()
