"""Speed of pool generation.

    python benchmarks/pools.py              # CPU: the pool framework vs a bare model-forward loop, tiny DiT
    python benchmarks/pools.py --compile    # CPU: + a compiled source, counting compilations (aot_eager backend)
    python benchmarks/pools.py --gpu        # GPU: a 2,000-image DiT-XL/2 pool end to end, Minimax step rate

CPU: the same images (guided ancestral sampling + VAE decode) through
`generate_pool` (per-image generators, PNG writing, the store) and as a bare
loop of batched model forwards with one noise draw per batch; prints both and
the ratio (target <= 1.15).

GPU (random-init real-size models): 2,000 images (10 classes x 200), 50 steps,
guidance 4, through `generate_pool`, end to end including VAE decoding and PNG
writing: float32 + TF32 (the paper's precision) and bf16 autocast, eager and
under torch.compile. Compiled runs warm up on the timed batch shape (the last
batch of a pool is padded to it), and every figure prints the compilations
dynamo made inside the timed region (0 expected). Then Minimax fine-tuning
through `Trainer.fit` (EMA, data module and loop included) for a fixed number
of steps: steps per second and host syncs per step (0 expected); 12,000 steps
are what the paper's generator trains.
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


def compile_count() -> int:
    """Graphs dynamo has compiled so far (first compilations and recompilations)."""
    from torch._dynamo.utils import counters
    return int(counters["stats"]["unique_graphs"])


def bare_loop(src, labels, steps):
    """Batched guided sampling with one noise draw per batch: the model work and nothing else."""
    from sas.generators.dit import dit_scheduler, guided_output, respaced_timesteps
    transformer, net, vae, dev, dt = src._load()
    cfg = transformer.config
    B = len(labels)
    low = torch.autocast(dev.type, dtype=dt, enabled=dt != torch.float32)
    with torch.no_grad():
        x = torch.randn(B, cfg.in_channels, cfg.sample_size, cfg.sample_size, device=dev)
        y = torch.tensor(labels, device=dev)
        y2 = torch.cat([y, torch.full_like(y, cfg.num_embeds_ada_norm)])
        sched = dit_scheduler()
        sched.set_timesteps(timesteps=respaced_timesteps(1000, steps))
        for t in sched.timesteps:
            with low:
                out = net(torch.cat([x, x]), timestep=torch.full((2 * B,), int(t), device=dev),
                          class_labels=y2).sample
            x = sched.step(guided_output(out.float(), B, 4.0, 3), t, x).prev_sample
        with low:
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


def cpu_compile_check(images_per_class: int, steps: int) -> None:
    """A compiled source on the CPU (dynamo with the aot_eager backend: no C++ toolchain needed): the pool
    compiles while warming up on the timed batch shape, and not again inside the timed region, the padded
    last batch included."""
    import torch._dynamo

    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    from sas.pools.dit import DiTSource

    tc, vc = _tiny()
    table = get_class_table("imagewoof")
    batch = 16
    src = DiTSource(model=None, transformer_config=tc, vae_config=vc, num_inference_steps=steps, batch=batch)
    transformer = src._load()[0]
    src._loaded = (transformer, torch.compile(transformer, backend="aot_eager"), *src._loaded[2:])
    src.compile = True                                     # generate_pool pads the last batch
    src.check(table)
    torch._dynamo.reset()
    before = compile_count()
    with tempfile.TemporaryDirectory() as d:               # warm-up on the timed shape
        generate_pool(src, table, 2, seed=99, cache_dir=d, progress=False)
    warm = compile_count() - before
    n = images_per_class * len(table)
    with tempfile.TemporaryDirectory() as d:
        before = compile_count()
        t0 = time.perf_counter()
        generate_pool(src, table, images_per_class, seed=0, cache_dir=d, progress=False)
        dt = time.perf_counter() - t0
    print(f"  compiled (aot_eager) : {dt:6.2f} s for {n} images, batch {batch} (last batch padded); "
          f"compilations: warm-up {warm}, timed region {compile_count() - before} (target 0)")


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
    for dtype in ("float32", "bfloat16"):
        for compiled in (False, True):
            src = DiTSource(model=None, transformer_config=xl, vae_config=vae, compile=compiled, dtype=dtype)
            src.check(table)
            bs = src.batch_size()
            with tempfile.TemporaryDirectory() as d:       # warm-up on the timed batch shape
                t0 = time.perf_counter()
                generate_pool(src, table, -(-bs // len(table)), seed=99, cache_dir=d, progress=False, batch_size=bs)
                warm = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as d:
                before = compile_count()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                generate_pool(src, table, n_per_class, seed=0, cache_dir=d, progress=False, batch_size=bs)
                torch.cuda.synchronize()
                print(f"  {dtype:<8} {'compiled' if compiled else 'eager':<8} {n_per_class * len(table)} images end "
                      f"to end: {time.perf_counter() - t0:.1f} s (batch {bs}; warm-up {warm:.0f} s; compilations "
                      f"in the timed region: {compile_count() - before})")
    minimax_fit_rate(xl, steps=60)


def minimax_fit_rate(config: dict, steps: int, batch: int = 8) -> None:
    """Minimax fine-tuning through Trainer.fit (data module, EMA, loop): steps/s after warm-up, syncs/step."""
    import pytorch_lightning as pl
    from diffusers import DiTTransformer2DModel

    from sas.generators.ema import EMA
    from sas.generators.latents import LatentDataModule
    from sas.generators.minimax import MinimaxModule
    from syncs import StepSyncs

    class Clock(pl.Callback):
        def __init__(self):
            self.times = []

        def on_train_batch_start(self, trainer, *args):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())

    n = 13000 if torch.cuda.is_available() else 400
    side = config["sample_size"]
    moments = torch.randn(n, 2, 2, config["in_channels"], side, side).half()
    labels = torch.arange(n) % 10
    clock, syncs = Clock(), StepSyncs()
    module = MinimaxModule(DiTTransformer2DModel(**config))
    trainer = pl.Trainer(max_steps=steps, callbacks=[EMA(0.9999), clock, syncs], logger=False, precision="32-true",
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, LatentDataModule(moments, labels, labels + 150, batch_size=batch))
    t = clock.times[10:]
    rate = (len(t) - 1) / (t[-1] - t[0])
    per_step = sorted(sum(c.values()) for c in syncs.per_step[10:])
    print(f"  Minimax fit (hidden {config['num_attention_heads'] * config['attention_head_dim']}, "
          f"{config['num_layers']} layers, batch {batch}, float32, EMA): {rate:.2f} steps/s -> 12,000 steps in "
          f"{12000 / rate / 60:.1f} min; host syncs per step: median {per_step[len(per_step) // 2]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--compile", action="store_true", help="CPU: also check a compiled source's compilations")
    ap.add_argument("--per-class", type=int, default=None, help="CPU default 6, GPU default 200")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.gpu:
        gpu_figures(args.per_class or 200)
    else:
        cpu_ratio(args.per_class or 6, args.steps, args.repeats)
        if args.compile:
            cpu_compile_check(args.per_class or 6, args.steps)
        tc, _ = _tiny()
        minimax_fit_rate(tc, steps=40)


if __name__ == "__main__":
    main()
