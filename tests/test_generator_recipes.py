"""What the generator recipes train: global batch on any world size, EMA from the pretrained weights,
Minimax's step count and VAEs, and the CIFAR-10 DDPM recipe (schedule, x0 prediction with SNR weights,
optimiser, warm-up + cosine, clipping, EMA warm-up)."""

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import DataLoader

from sas.generators.ema import EMA
from sas.devices import per_process_batch
from sas.generators.latents import LatentDataModule

CONF = Path(__file__).resolve().parents[1] / "conf"


def train_cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_global_batch_is_split_over_the_processes():
    assert per_process_batch(8, SimpleNamespace(world_size=1)) == 8
    assert per_process_batch(8, SimpleNamespace(world_size=4)) == 2
    with pytest.raises(ValueError, match="batch_size=8 .* not divisible by the 3 training processes"):
        per_process_batch(8, SimpleNamespace(world_size=3))
    dm = LatentDataModule(torch.zeros(16, 2, 2, 4, 2, 2), torch.zeros(16), torch.zeros(16), batch_size=8)
    dm.trainer = SimpleNamespace(world_size=2)
    dm.setup("fit")
    assert dm.train_dataloader().batch_size == 4


class Line(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        self.frozen = torch.nn.Parameter(torch.tensor([3.0]), requires_grad=False)

    def training_step(self, batch, batch_idx):
        return (self.w * batch).sum()                      # d/dw = batch = 1: each SGD step moves w by -lr

    def configure_optimizers(self):
        return torch.optim.SGD([self.w], lr=0.5)

    def train_dataloader(self):
        return DataLoader(torch.ones(8, 2), batch_size=1)


def fit(ema, steps):
    module = Line()
    pl.Trainer(max_steps=steps, callbacks=[ema], logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, accelerator="cpu").fit(module)
    return module


def test_ema_starts_from_the_pretrained_weights():
    # w0 = (1, -2); after step k the weights are w0 - 0.5 k. EMA(0.9) from w0:
    # e1 = 0.9 w0 + 0.1 w1, e2 = 0.9 e1 + 0.1 w2 (Lightning's own EMA would start at w1)
    module = fit(EMA(decay=0.9, from_start=True), steps=2)
    w0, w1, w2 = torch.tensor([1.0, -2.0]), torch.tensor([0.5, -2.5]), torch.tensor([0.0, -3.0])
    e2 = 0.9 * (0.9 * w0 + 0.1 * w1) + 0.1 * w2
    torch.testing.assert_close(module.w.detach(), e2)        # the model holds the average when fit ends
    assert module.frozen.item() == 3.0
    late = fit(EMA(decay=0.9, from_start=False), steps=2)     # the other convention: first average = w1
    torch.testing.assert_close(late.w.detach(), 0.9 * w1 + 0.1 * w2)


def test_ema_warmup_is_diffusers_emamodel():
    ema = EMA(decay=0.9999, warmup_inv_gamma=1.0, warmup_power=0.75)
    for k in (1, 10, 1000, 10 ** 7):
        expect = min(0.9999, 1 - (1 + k) ** -0.75)
        assert math.isclose(ema.step_decay(k), expect, rel_tol=1e-9)
    assert EMA(decay=0.99).step_decay(5) == 0.99 and EMA(decay=0.99).step_decay(0) == 0.0


def test_minimax_recipe_values():
    from sas.generators.training import build_trainer
    from hydra.utils import instantiate
    cfg = train_cfg("generator=minimax", "trainer.accelerator=cpu", "trainer.devices=1", "train_logger=none")
    g = cfg.generator
    assert g.max_steps == 12000 and g.epochs == 8 and g.batch_size == 8 and g.lr == 1e-3
    assert g.vae == "stabilityai/sd-vae-ft-ema" and g.sample_vae == "stabilityai/sd-vae-ft-mse"
    assert cfg.trainer.precision == "32-true" and cfg.tf32
    trainer = build_trainer(cfg, instantiate(g, _convert_="all").callbacks())
    assert trainer.max_steps == 12000 and trainer.gradient_clip_val is None
    ema = [c for c in trainer.callbacks if isinstance(c, EMA)][0]
    assert ema.from_start and ema.decay == 0.9999 and ema.warmup_inv_gamma is None


def test_ddpm_recipe_values_and_trainer():
    from sas.generators.training import build_trainer
    from hydra.utils import instantiate
    cfg = train_cfg("generator=ddpm", "dataset=cifar10", "trainer.accelerator=cpu", "trainer.devices=1",
                    "train_logger=none")
    g = cfg.generator
    assert (g.beta_schedule, g.prediction_type, g.num_train_timesteps) == ("squaredcos_cap_v2", "sample", 1000)
    assert list(g.adam_betas) == [0.95, 0.999] and g.weight_decay == 1e-6 and g.lr == 1e-4
    assert g.lr_schedule == "cosine" and g.grad_clip_norm == 1.0
    # [20]'s train_conditional.py: six levels, attention at the fifth down / second up level, the label through
    # the timestep embedding, no flips; its README's command: batch 64 x accumulation 4, 2000 epochs, warm-up 1000
    # (x accumulation in scheduler steps)
    assert list(g.unet.block_out_channels) == [128, 128, 256, 256, 512, 512] and g.unet.layers_per_block == 2
    assert [i for i, b in enumerate(g.unet.down_block_types) if b.startswith("Attn")] == [4]
    assert [i for i, b in enumerate(g.unet.up_block_types) if b.startswith("Attn")] == [1]
    assert g.unet.class_embed_type == "timestep" and not g.random_flip
    assert (g.batch_size, g.grad_accumulation, g.epochs, g.warmup_steps, g.schedule_horizon) == (64, 4, 2000, 4000, 4.0)
    trainer = build_trainer(cfg, instantiate(g, _convert_="all").callbacks())
    assert trainer.gradient_clip_val == 1.0 and trainer.accumulate_grad_batches == 4
    ema = [c for c in trainer.callbacks if isinstance(c, EMA)][0]
    assert not ema.from_start and ema.warmup_inv_gamma == 1.0 and ema.warmup_power == 0.75


def tiny_unet():
    return {"sample_size": 8, "in_channels": 3, "out_channels": 3, "layers_per_block": 1,
            "block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "UpBlock2D"], "norm_num_groups": 4, "num_class_embeds": 3}


def test_sample_prediction_loss_is_snr_weighted_x0_error():
    from sas.generators.ddpm import DDPMModule, snr_weighted_loss
    torch.manual_seed(0)
    module = DDPMModule(tiny_unet(), beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    abar = module.scheduler.alphas_cumprod
    x0, x0_hat, t = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.tensor([0, 10, 500, 999])
    expect = sum(float(abar[ti] / (1 - abar[ti])) * float(((x0_hat[i] - x0[i]) ** 2).mean())
                 for i, ti in enumerate(t.tolist())) / 4
    assert math.isclose(float(snr_weighted_loss(x0_hat, x0, abar, t)), expect, rel_tol=1e-5)
    # squaredcos_cap_v2: abar_t = cos^2(((t/T + 0.008) / 1.008) pi / 2) / cos^2(0.008 / 1.008 pi / 2), betas <= 0.999
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert math.isclose(float(abar[499]), f(500 / 1000) / f(0), rel_tol=1e-4)
    assert module.scheduler.config.prediction_type == "sample"


def test_ddpm_lr_warms_up_then_follows_a_cosine(tmp_path):
    from sas.generators.ddpm import DDPMModule
    module = DDPMModule(tiny_unet(), lr=1e-3, warmup_steps=10, lr_schedule="cosine")
    module.trainer = SimpleNamespace(estimated_stepping_batches=110)
    module._trainer = module.trainer
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert opt.defaults["betas"] == (0.95, 0.999) and opt.defaults["weight_decay"] == 1e-6
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0 and math.isclose(lrs[5], 5e-4) and math.isclose(lrs[10], 1e-3)
    assert math.isclose(lrs[60], 1e-3 * 0.5 * (1 + math.cos(math.pi * 50 / 100)), rel_tol=1e-6)
    assert lrs[109] < 1e-6
    # [20] on one GPU with accumulation 4: the cosine spans 4x the updates it takes (schedule_horizon 4)
    module = DDPMModule(tiny_unet(), lr=1e-3, warmup_steps=10, lr_schedule="cosine", schedule_horizon=4.0)
    module.trainer = module._trainer = SimpleNamespace(estimated_stepping_batches=110)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    for _ in range(109):
        opt.step()
        sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 1e-3 * 0.5 * (1 + math.cos(math.pi * 99 / 430)), rel_tol=1e-6)


def test_pool_ddpm_draws_from_the_released_weights_with_their_scheduler(hf_home, fresh_hub, tmp_path):
    from hydra.utils import instantiate

    import sas.config  # noqa: F401  (the distill config schema)
    from published import DDPM_RELEASE_REPO, ddpm_release
    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    snapshot = ddpm_release(hf_home)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("distill", overrides=["pool=ddpm", "dataset=cifar10", "pool.source.num_inference_steps=3",
                                            "pool.source.batch=10"])
    src = instantiate(cfg.pool.source)
    assert src.model == DDPM_RELEASE_REPO
    store = generate_pool(src, get_class_table("cifar10"), 1, 0, tmp_path, progress=False)
    unet, sched, _, _ = src._load()
    assert sched.config.prediction_type == "sample" and sched.config.beta_schedule == "squaredcos_cap_v2"
    assert unet.config.class_embed_type == "timestep" and len(store.paths(1)[0]) == 10
    assert src.key_config()["model"] == {"hub": DDPM_RELEASE_REPO, "commit": snapshot.name}


def test_minimax_lengths_by_dataset():
    assert train_cfg("generator=minimax").generator.max_steps == 12000            # the released subsets' checkpoint
    g = train_cfg("generator=minimax_imagenet1k", "dataset=imagenet1k").generator
    assert (g.max_steps, g.epochs, g.batch_size) == (-1, 1, 8)                    # ours: one pass (none published)


def test_sample_prediction_ddpm_trains_and_its_pool_samples(tmp_path):
    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    from sas.pools.ddpm import DDPMSource
    from sas.generators.training import train_generator
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[
            "dataset=digits", f"paths.cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'gen'}",
            "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "trainer.devices=1", "generator=ddpm_tiny",
            "generator.prediction_type=sample", "generator.beta_schedule=squaredcos_cap_v2", "generator.epochs=1",
            "generator.per_class=8", "generator.ema_decay=0.999", "generator.ema_inv_gamma=1.0",
            "generator.grad_clip_norm=1.0", "generator.warmup_steps=1", "generator.lr_schedule=cosine"])
    out = train_generator(cfg)
    from diffusers import DDPMScheduler
    assert DDPMScheduler.from_pretrained(out / "scheduler").config.prediction_type == "sample"
    src = DDPMSource(model=str(out), num_inference_steps=4)
    store = generate_pool(src, get_class_table("digits"), 1, 0, tmp_path / "cache", progress=False)
    assert len(store.paths(1)[0]) == 10
