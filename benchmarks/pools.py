"""Speed of pool generation.

    python benchmarks/pools.py              # CPU: the pool framework vs a bare model-forward loop, tiny DiT
    python benchmarks/pools.py --gpu        # GPU: a 2,000-image DiT-XL/2 pool end to end, Minimax step rate

CPU: the same images (guided ancestral sampling + VAE decode) through
`generate_pool` (per-image generators, PNG writing, the store) and as a bare
loop of batched model forwards with one noise draw per batch; prints both and
the ratio (target <= 1.15).

GPU (random-init real-size models, bf16): 2,000 images (10 classes x 200),
50 steps, guidance 4, through `generate_pool`, end to end including VAE
decoding and PNG writing, eager and under torch.compile (compile time shown
separately); then Minimax fine-tuning steps per second at batch 8 on latents
(8 epochs over ~13,000 ImageWoof images is ~13,000 steps).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch


def _tiny(hidden=96, layers=6, heads=4, sample=16):
    tc = dict(num_attention_heads=heads, attention_head_dim=hidden // heads, in_channels=4, out_channels=8,
              num_layers=layers, sample_size=sample, patch_size=2, num_embeds_ada_norm=1000)
    vc = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
              up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[16, 32], latent_channels=4,
              layers_per_block=1, norm_num_groups=8, sample_size=2 * sample)
    return tc, vc


def bare_loop(src, labels, steps):
    """Batched guided sampling with one noise draw per batch: the model work and nothing else."""
    from sas.pools.dit import dit_scheduler, guided_output, respaced_timesteps
    transformer, net, vae, dev, dt = src._load()
    cfg = transformer.config
    B = len(labels)
    with torch.no_grad():
        x = torch.randn(B, cfg.in_channels, cfg.sample_size, cfg.sample_size, device=dev, dtype=dt)
        y = torch.tensor(labels, device=dev)
        y2 = torch.cat([y, torch.full_like(y, cfg.num_embeds_ada_norm)])
        sched = dit_scheduler()
        sched.set_timesteps(timesteps=respaced_timesteps(1000, steps))
        for t in sched.timesteps:
            out = net(torch.cat([x, x]), timestep=torch.full((2 * B,), int(t), device=dev), class_labels=y2).sample
            x = sched.step(guided_output(out, B, 4.0, 3).float(), t, x.float()).prev_sample.to(dt)
        return vae.decode(x / 0.18215).sample


def cpu_ratio(images_per_class: int, steps: int, repeats: int) -> None:
    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    from sas.pools.dit import DiTSource

    tc, vc = _tiny()
    table = get_class_table("imagewoof")
    batch = 20
    src = DiTSource(model=None, transformer_config=tc, vae_config=vc, num_inference_steps=steps, batch=batch)
    src.check(table)
    n = images_per_class * len(table)
    labels = [c for c in range(len(table)) for _ in range(images_per_class)]
    print(f"CPU: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"tiny DiT (hidden 96, 6 layers, latent 4x16x16) + VAE -> 32 px, {n} images, {steps} steps, batch {batch}")
    bare_loop(src, labels[:batch], 2)  # warm-up
    t_pool, t_bare = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            generate_pool(src, table, images_per_class, seed=0, cache_dir=d, progress=False)
            t_pool.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            bare_loop(src, labels[s:s + batch], steps)
        t_bare.append(time.perf_counter() - t0)
    tp, tb = min(t_pool), min(t_bare)
    print(f"  generate_pool : {tp:6.2f} s  ({n / tp:.1f} img/s, PNGs written)")
    print(f"  bare loop     : {tb:6.2f} s")
    print(f"  ratio         : {tp / tb:6.2f}x  (target <= 1.15; best of {repeats})")


def gpu_figures(n_per_class: int) -> None:
    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    from sas.pools.dit import DiTSource

    xl = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
              sample_size=32, patch_size=2, num_embeds_ada_norm=1000)
    vae = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
               up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
               latent_channels=4, layers_per_block=2, norm_num_groups=32, sample_size=256)
    table = get_class_table("imagewoof")
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for compiled in (False, True):
        src = DiTSource(model=None, transformer_config=xl, vae_config=vae, compile=compiled)
        src.check(table)
        if compiled:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                generate_pool(src, table, 1, seed=99, cache_dir=d, progress=False, batch_size=src.batch_size())
            print(f"  one-time compile + first batch: {time.perf_counter() - t0:.1f} s")
        with tempfile.TemporaryDirectory() as d:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            generate_pool(src, table, n_per_class, seed=0, cache_dir=d, progress=False)
            torch.cuda.synchronize()
            print(f"  {'compiled' if compiled else 'eager':<8} {n_per_class * len(table)} images end to end: "
                  f"{time.perf_counter() - t0:.1f} s (batch {src.batch_size()})")
    from sas.lit.minimax import MinimaxModule
    from diffusers import DiTTransformer2DModel
    module = MinimaxModule(DiTTransformer2DModel(**xl)).cuda()
    opt = module.configure_optimizers()
    x0 = torch.randn(8, 4, 32, 32, device="cuda")
    labels = torch.arange(8, device="cuda") % 10
    for i in range(25):
        if i == 5:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = module.training_step((x0, labels, labels + 150), i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    rate = 20 / (time.perf_counter() - t0)
    print(f"  Minimax step (batch 8, bf16): {rate:.1f} steps/s -> 13,000 steps in {13000 / rate / 60:.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--per-class", type=int, default=None, help="CPU default 6, GPU default 200")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.gpu:
        gpu_figures(args.per_class or 200)
    else:
        cpu_ratio(args.per_class or 6, args.steps, args.repeats)


if __name__ == "__main__":
    main()
