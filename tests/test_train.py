"""train.py's generator training: a DDPM that learns, reuse of a finished folder, resume, Minimax end to end."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from sas.generators.training import DONE, train_generator

CONF = Path(__file__).resolve().parents[1] / "conf"


def train_cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[
            "dataset=digits", f"paths.cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'gen'}",
            "trainer.precision=32-true", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
            "trainer.devices=1", "callbacks.checkpoint.every_n_train_steps=5", *overrides])


def test_ddpm_fit_lowers_its_loss(tmp_path):
    from sas.data.real import load_digits_split
    from sas.generators.ddpm import DDPMModule
    cfg = train_cfg(tmp_path, "generator=ddpm_tiny", "generator.epochs=2", "generator.sample_every_n_steps=20",
                    "trainer.log_every_n_steps=10",
                    "generator.sample_per_class=1")
    from omegaconf import OmegaConf
    unet = {**OmegaConf.to_container(cfg.generator.unet, resolve=True), "num_class_embeds": 10}
    torch.manual_seed(0)
    ref = DDPMModule(unet)
    images = load_digits_split("train", 16)
    g = torch.Generator().manual_seed(0)
    x0 = images.images[:128].float() / 127.5 - 1
    y = images.labels[:128]
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, 1000, (128,), generator=g)

    def held_out_loss(unet_model):
        with torch.no_grad():
            x_t = ref.scheduler.add_noise(x0, noise, t)
            return torch.nn.functional.mse_loss(unet_model(x_t, t, class_labels=y).sample, noise).item()

    before = held_out_loss(ref.unet)
    out = train_generator(cfg)
    from diffusers import UNet2DModel
    after = held_out_loss(UNet2DModel.from_pretrained(out / "unet").eval())
    assert after < 0.7 * before, (before, after)
    assert (out / DONE).is_file() and (out / "scheduler").is_dir() and (out / "train_config.json").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    # logged to W&B (offline here): the loss curve and the learning rate, with the run's config
    from wandb_offline import read_offline_run
    (wb,) = out.glob("wandb/offline-run-*")
    logged = read_offline_run(wb)
    keys = {k for h in logged["history"] for k in h}
    assert "train/loss_step" in keys and any(k.startswith("lr-") for k in keys), keys
    assert logged["config"]["generator"]["kind"] == "ddpm"
    # a grid of samples per class every 20 steps (44 steps: 2 grids), the same noise each time
    assert len(list(wb.glob("files/media/images/samples_*.png"))) == 2
    import json
    assert json.loads((out / "wandb_run.json").read_text())["id"] == wb.name.rsplit("-", 1)[-1]


def test_finished_folder_is_reused_and_training_resumes(tmp_path):
    cfg = train_cfg(tmp_path, "generator=ddpm_tiny", "generator.epochs=1", "generator.per_class=20",
                    "callbacks.checkpoint.every_n_train_steps=2")
    out = train_generator(cfg)
    stamp = (out / DONE).stat().st_mtime_ns
    assert train_generator(cfg) == out and (out / DONE).stat().st_mtime_ns == stamp  # nothing retrained
    saved = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert saved > 0
    (out / DONE).unlink()  # as if killed after the first epoch of two
    out = train_generator(train_cfg(tmp_path, "generator=ddpm_tiny", "generator.epochs=2", "generator.per_class=20",
                                    "callbacks.checkpoint.every_n_train_steps=2"))
    # fit continued from the saved state: the second epoch's steps come on top of the first's, not from 0
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2 * saved


def test_minimax_end_to_end_then_pool(tmp_path):
    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    from sas.pools.dit import DiTSource
    out = train_generator(train_cfg(tmp_path, "generator=minimax_tiny", "generator.class_ids=label",
                                    "generator.per_class=8"))
    assert (out / "transformer" / "config.json").is_file() and (out / "vae").is_dir()
    assert list((tmp_path / "cache" / "latents").glob("*/chunk-*.pt"))  # the train set was encoded once and cached
    src = DiTSource(model=str(out), vae=None, class_ids="label", num_inference_steps=3)
    store = generate_pool(src, get_class_table("digits"), 1, 0, tmp_path / "cache", progress=False)
    assert len(store.paths(1)[0]) == 10


def test_bad_generator_inputs(tmp_path):
    with pytest.raises(ValueError, match="has no ImageNet ids"):
        train_generator(train_cfg(tmp_path, "generator=minimax_tiny"))
    with pytest.raises(ValueError, match="sample_size=32 but the dataset images are 16 px"):
        train_generator(train_cfg(tmp_path, "generator=ddpm_tiny", "generator.unet.sample_size=32"))
