"""Speed of the downstream evaluation (IDC protocol).

    python benchmarks/evaluation.py                 # CPU: Lightning path vs a bare PyTorch loop
    python benchmarks/evaluation.py --gpu           # GPU: ms/step and one IPC-10 protocol run per model

CPU: the same protocol (augmentation, CutMix, SGD + schedule, evaluation every
epochs/evaluations) on the same model and data (digits, IPC 10, 32 px), once
through `sas.evaluation.protocol.run_repeat` (Lightning) and once as a plain loop;
prints both times, their ratio (target <= 1.2), Lightning's fixed cost per
epoch, and the host syncs per steady-state step (benchmarks/syncs.py; target 0).

GPU: ResNetAP-10 contiguous vs channels_last (instance norm may lack a fast
NHWC kernel); ResNetAP-10 and ConvNet-6 at 224 px, batch 64, bf16, on random
data: ms per training step eager and under torch.compile (compile time
separately, compilations inside the timed region printed: 0 expected), then
one full IPC-10 protocol run (100 images, 2,000 epochs, 100 evaluations on 500
val images) through the Lightning path, with the graphs it compiled.
"""

from __future__ import annotations

import argparse
import os
import platform
import time


def bare_loop(train, val, model_spec: dict, protocol, epochs: int, device: str = "cpu") -> float:
    """The protocol as a plain PyTorch loop -> best top-1 (the reference the Lightning path is timed against)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from sas.data.augment import TrainAugment, cutmix, normalize, to_unit_float
    from sas.models import build_model

    torch.manual_seed(protocol.seed)
    net = build_model(model_spec, train.num_classes, image_size=protocol.image_size).to(device)
    aug = TrainAugment(protocol.image_size, scale=tuple(protocol.crop_scale), brightness=protocol.jitter,
                       contrast=protocol.jitter, saturation=protocol.jitter, lighting=protocol.lighting)
    opt = torch.optim.SGD(net.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                          weight_decay=protocol.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(f * epochs) for f in protocol.lr_milestones],
                                                 protocol.lr_gamma)
    x_tr, y_tr = train.images.to(device), train.labels.to(device)
    x_va, y_va = val.images.to(device), val.labels.to(device)
    g, rng = torch.Generator(device=device).manual_seed(0), np.random.default_rng(0)
    every, best = protocol.eval_every(epochs), 0.0
    for epoch in range(1, epochs + 1):
        net.train()
        for idx in torch.randperm(len(train), device=device).split(protocol.batch_size):
            x, y_a, y_b, lam = cutmix(aug(x_tr[idx], g), y_tr[idx], protocol.cutmix_beta,
                                      protocol.cutmix_prob, rng)
            out = net(x)
            loss = lam * F.cross_entropy(out, y_a) + (1 - lam) * F.cross_entropy(out, y_b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if epoch % every == 0:
            net.eval()
            with torch.no_grad():
                correct = sum((net(normalize(to_unit_float(x_va[i]))).argmax(1) == y_va[i]).sum()
                              for i in torch.arange(len(val), device=device).split(protocol.eval_batch_size))
            best = max(best, float(correct) / len(val))
    return best


def cpu_ratio(epochs: int, repeats: int) -> None:
    import torch

    from sas.data.images import ImageSet
    from sas.data.real import load_digits_split
    from sas.evaluation.protocol import Protocol, run_repeat

    train, val = load_digits_split("train", 32), load_digits_split("val", 32)
    idx = torch.cat([torch.nonzero(train.labels == c).flatten()[:10] for c in range(10)])
    train = ImageSet(train.images[idx], train.labels[idx], train.classes, "digits IPC 10")
    protocol = Protocol(epochs=epochs, evaluations=10, image_size=32, repeats=1, progress=False)
    spec = {"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 64}
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"digits IPC 10 (100 images, 32 px), ConvNet-3 width 64, {epochs} epochs, 10 evaluations on 540 images")
    run_repeat(train, val, spec, Protocol(epochs=2, evaluations=1, image_size=32, progress=False), 2, 0)  # warm-up
    t_l, t_b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = run_repeat(train, val, spec, protocol, epochs, 0)
        t_l.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        best = bare_loop(train, val, spec, protocol, epochs)
        t_b.append(time.perf_counter() - t0)
    tl, tb = min(t_l), min(t_b)
    print(f"  Lightning path : {tl:7.2f} s  (best top-1 {r['best_top1']:.3f})")
    print(f"  bare loop      : {tb:7.2f} s  (best top-1 {best:.3f})")
    print(f"  ratio          : {tl / tb:7.2f}x  (target <= 1.2; best of {repeats})")
    print(f"  Lightning's fixed cost: {1e3 * (tl - tb) / epochs:+.2f} ms per epoch (2 steps per epoch at IPC 10) "
          f"= {(tl - tb) / epochs * 2000:+.1f} s per 2,000-epoch repeat")
    print(f"  host syncs per steady-state step: {steady_syncs(train, val, spec, protocol)} (target 0)")


def steady_syncs(train, val, spec: dict, protocol) -> int:
    """Median host syncs per training step of the Lightning path (benchmarks/syncs.py), within an epoch."""
    import pytorch_lightning as pl

    from sas.evaluation.classifier import Classifier
    from sas.evaluation.datamodule import ResidentDataModule
    from sas.models import build_model
    from syncs import StepSyncs

    module = Classifier(build_model(spec, train.num_classes, image_size=protocol.image_size), epochs=4)
    counter = StepSyncs()
    dm = ResidentDataModule(train, val, protocol.train_augment(), 8, protocol.eval_batch_size, 0,
                            protocol.mean, protocol.std)
    pl.Trainer(max_steps=10, callbacks=[counter], logger=False, enable_checkpointing=False, limit_val_batches=0,
               enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0).fit(module, dm)
    counts = sorted(sum(c.values()) for c in counter.per_step[2:])
    return counts[len(counts) // 2]


def bf16_step(net, opt, x, y):
    """One SGD step of cross-entropy under bf16 autocast, as a closure (the GPU timings' unit of work)."""
    import torch
    import torch.nn.functional as F

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def gpu_figures(epochs: int) -> None:
    import torch

    from sas.data.classes import ClassTable
    from sas.data.images import ImageSet
    from sas.evaluation.protocol import Protocol, run_repeat
    from sas.models import build_model

    from torch._dynamo.utils import counters

    dev = "cuda"
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for fmt in (torch.contiguous_format, torch.channels_last):     # instance norm may lack a fast NHWC kernel
        net = build_model("resnet_ap", 10, depth=10).to(dev).to(memory_format=fmt)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, fused=True)
        x = torch.randn(64, 3, 224, 224, device=dev).contiguous(memory_format=fmt)
        y = torch.randint(0, 10, (64,), device=dev)
        step = bf16_step(net, opt, x, y)
        for i in range(25):
            if i == 5:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
            step()
        torch.cuda.synchronize()
        print(f"  ResNetAP-10 eager bf16 {'channels_last' if fmt == torch.channels_last else 'contiguous':<14}"
              f"{(time.perf_counter() - t0) / 20 * 1e3:6.1f} ms/step")
    models = {"ResNetAP-10": {"_target_": "sas.models.resnet_ap.ResNetAP", "depth": 10},
              "ConvNet-6": {"_target_": "sas.models.convnet.ConvNet", "depth": 6, "width": 128}}
    for label, spec in models.items():
        for compiled in (False, True):
            net = build_model(spec, 10, image_size=224).to(dev).to(memory_format=torch.channels_last)
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True)
            x = torch.randn(64, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, 10, (64,), device=dev)
            step = bf16_step(torch.compile(net) if compiled else net, opt, x, y)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize()
            first = time.perf_counter() - t0
            for _ in range(5):
                step()
            graphs = counters["stats"]["unique_graphs"]
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(50):
                step()
            torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) / 50 * 1e3
            print(f"  {label:<12} {'compiled' if compiled else 'eager':<8} {ms:6.1f} ms/step"
                  + (f"  (first step incl. compile {first:.1f} s; compilations in the timed region: "
                     f"{counters['stats']['unique_graphs'] - graphs})" if compiled else ""))
    table = ClassTable.from_names("random10", [f"c{i}" for i in range(10)])
    g = torch.Generator().manual_seed(0)
    train = ImageSet(torch.randint(0, 256, (100, 3, 224, 224), generator=g, dtype=torch.uint8),
                     torch.arange(10).repeat(10), table, "random IPC 10")
    val = ImageSet(torch.randint(0, 256, (500, 3, 224, 224), generator=g, dtype=torch.uint8),
                   torch.arange(10).repeat(50), table, "random val")
    for compiled in (False, True):
        protocol = Protocol(epochs=epochs, image_size=224, repeats=1, precision="bf16-mixed",
                            channels_last=True, compile=compiled, progress=False)
        for label, spec in models.items():
            graphs = counters["stats"]["unique_graphs"]
            t0 = time.perf_counter()
            run_repeat(train, val, spec, protocol, epochs, 0)
            print(f"  protocol run {label:<12} {'compiled' if compiled else 'eager':<8} "
                  f"{epochs} epochs: {time.perf_counter() - t0:6.1f} s (target 25 s ResNetAP-10 / 30 s ConvNet-6; "
                  f"compile included; graphs compiled: {counters['stats']['unique_graphs'] - graphs}: train batch "
                  f"64, its last batch 36, eval)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--epochs", type=int, default=None, help="CPU default 100; GPU default 2000 (IPC 10)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.gpu:
        gpu_figures(args.epochs or 2000)
    else:
        cpu_ratio(args.epochs or 100, args.repeats)


if __name__ == "__main__":
    main()
