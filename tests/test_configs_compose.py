"""Every option of every config group, and every experiment preset, composes and builds what it names."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import sas.config  # noqa: F401  (the distill config schema)
from hydra.utils import instantiate

from sas.models import build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
OPTIONS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml") if not p.stem.startswith("_"))   # _: base files
           for g in ("dataset", "pool", "encoder", "sampler", "model", "eval", "logger", "experiment")}


def distill_cfg(tmp_path, *overrides):
    cache = tmp_path / "cache"
    for kind in ("minimax", "ddpm"):                       # where pool=minimax / ddpm look for trained weights
        for name in ("imagewoof", "imagenette", "imageidc", "cifar10", "digits", "custom", "imagenet1k"):
            (cache / "generators" / f"{kind}-{name}" / "unet").mkdir(parents=True, exist_ok=True)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("distill", overrides=[f"paths.cache_dir={cache}", f"paths.data_dir={tmp_path}", *overrides])


def build_every_part(cfg):
    """The objects a run builds from its config (no weights or data are loaded)."""
    built = {"sampler": instantiate(cfg.sampler), "eval": instantiate(cfg.eval), "dataset": instantiate(cfg.dataset),
             "encoder": instantiate(cfg.encoder, _convert_="all"), "pool": instantiate(cfg.pool.source)}
    built["model"] = build_model(cfg.model, 10, image_size=cfg.eval.image_size)
    built["logger"] = instantiate(cfg.logger)                  # a partial Tracker: the job's config comes later
    assert built["logger"].func.__name__ == "Tracker"
    return built


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in OPTIONS.items() if g != "experiment" for o in opts])
def test_every_group_option_builds(tmp_path, group, option):
    extra = ["pool.source.root=/tmp"] if option == "folder" and group == "pool" else []
    extra += ["dataset.root=/tmp", "dataset.classes=[a,b]"] if option == "folder" and group == "dataset" else []
    cfg = distill_cfg(tmp_path, f"{group}={option}", *extra)
    built = build_every_part(cfg)
    if group in ("sampler", "eval", "dataset", "encoder", "model"):
        node = cfg[group]
        target = node.get("_target_") if group != "model" else node["_target_"]
        assert type(built[group]).__name__ in target or group == "model" and built["model"] is not None


@pytest.mark.parametrize("preset", OPTIONS["experiment"])
def test_every_experiment_preset_composes_and_builds(tmp_path, preset):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("distill", overrides=[f"experiment={preset}"], return_hydra_config=True)
    params = dict(cfg.hydra.sweeper.get("params") or {})
    first = [f"{k}={str(v).split(',')[0]}" for k, v in params.items()           # the first point of the sweep
             if (k in ("sampler", "pool", "model", "encoder", "eval", "dataset") or k.startswith("sampler."))
             and "(" not in str(v)]                                               # not an Optuna distribution
    cfg = distill_cfg(tmp_path, f"experiment={preset}", *first)
    assert build_every_part(cfg)["sampler"].ipc >= 1


@pytest.mark.parametrize("generator", sorted(p.stem for p in (CONF / "generator").glob("*.yaml")))
def test_every_generator_config_builds_its_trainer(generator, tmp_path):
    from sas.generators.training import build_trainer
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"generator={generator}", "train_logger=none", "trainer.accelerator=cpu",
                                          "trainer.devices=1", f"output_dir={tmp_path}"])
    assert cfg.generator.kind in ("minimax", "ddpm") and cfg.generator.batch_size >= 1
    trainer = build_trainer(cfg, instantiate(cfg.generator, _convert_="all").callbacks())
    assert trainer.max_epochs == cfg.generator.epochs and trainer.max_steps == cfg.generator.max_steps
    assert trainer.checkpoint_callback.dirpath == str(tmp_path / "checkpoints")


@pytest.mark.parametrize("override,key", [("overwrite=maybe", "overwrite"), ("seed=one", "seed"),
                                          ("holdout_per_class=[1]", "holdout_per_class"), ("epochs=3", "epochs")])
def test_run_level_keys_are_typed_by_the_schema(tmp_path, override, key):
    with pytest.raises(Exception, match=key):
        distill_cfg(tmp_path, override)
