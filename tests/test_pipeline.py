"""distill.py end to end: smoke preset, sweeps over one pool, resume after a kill, no-overwrite,
config validation, W&B offline contents, and the demo preset on a reduced size."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from sas.config import ConfigError
from sas.pipeline import run
from wandb_offline import read_offline_run

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def cfg_for(tmp_path, *overrides, out="run", experiment="smoke"):
    small = ["sampler.ipc=2", "sampler.pool_mult=2"] if experiment == "smoke" else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("distill", overrides=[f"experiment={experiment}", f"paths.cache_dir={tmp_path / 'cache'}",
                                             f"paths.output_dir={tmp_path / out}", "logger.mode=offline",
                                             *small, *overrides])


def pool_dirs(tmp_path):
    return sorted((tmp_path / "cache" / "pools").iterdir())


def test_smoke_end_to_end(tmp_path, capsys):
    best = run(cfg_for(tmp_path, "pictures=true"), choices={"sampler": "sas"})
    out = tmp_path / "run"
    res = json.loads((out / "results.json").read_text())
    assert res["best_top1_mean"] == best and 0 <= best <= 1 and res["ipc"] == 2 and res["pool_mult"] == 2
    rows = [json.loads(line) for line in (out / "distilled" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and sorted({r["label"] for r in rows}) == list(range(10))
    assert all((out / "distilled" / r["file"]).is_file() for r in rows)
    assert {"relevance", "separation", "margin", "static_diversity", "candidate", "selected"} <= set(rows[0])
    assert len((out / "pool_scores.jsonl").read_text().splitlines()) == 40  # the whole pool: 2 x 2 x 10
    assert (out / "config.yaml").is_file() and len((out / "eval_repeats.jsonl").read_text().splitlines()) == 1
    # W&B offline run: the summary, the grouping keys, the per-repeat curve and the selection are there
    (wb,) = out.glob("wandb/offline-run-*")
    logged = read_offline_run(wb)
    assert logged["summary"]["best_top1_mean"] == pytest.approx(best) and "sas/repeat0/val/top1" in logged["summary"]
    assert logged["config"]["group_by"]["pool_mult"] == 2 and logged["config"]["group_by"]["sampler"] == "sas"
    assert logged["config"]["name"] == "smoke" and "lr_gamma" not in logged["config"]
    # quality of the pool and the set against the real train split, and every stage's cost, in both records
    q = res["samplers"]["sas"]["quality"]
    assert set(q["overall"]) == {"fd", "precision", "recall", "density", "coverage", "n"} and q["overall"]["n"] == 20
    assert q["overall"]["fd"] > 0 and 0 <= q["overall"]["coverage"] <= 1 and len(q["per_class"]) == 10
    assert res["pool_quality"]["overall"]["n"] == 40 and res["pool_quality"]["k"] == 5
    assert set(res["cost"]) == {"pool", "encode", "quality"}
    assert set(res["samplers"]["sas"]["cost"]) == {"select", "write", "evaluate"}
    ev = res["samplers"]["sas"]["cost"]["evaluate"]
    assert ev["wall_s"] > 0 and ev["cpu_s"] > 0 and ev["host_peak_mib"] > 100 and ev["device_s"] is None
    assert logged["summary"]["sas/quality/fd"] == pytest.approx(q["overall"]["fd"])
    assert logged["summary"]["sas/cost/evaluate/wall_s"] == ev["wall_s"] and "pool/cost/encode/wall_s" in logged["summary"]
    # the dashboard's curve panels read these keys: a curve per repeat, against the epoch
    import re

    from sas.report.dashboard import CURVE_X, curve_regex
    curves = [h for h in logged["history"] if any(re.search(curve_regex("val/top1"), k) for k in h)]
    assert curves and [h[CURVE_X] for h in curves] == [h["sas/repeat0/epoch"] for h in curves]
    assert len(list(wb.glob("files/media/images/sas/*.png"))) == 20  # the grid of the selected images
    # the pictures: PNGs in the run folder, and the same images in the W&B run
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert figures == {"score_histograms.png", "embedding_map.png", "selected_grid.png"}
    assert {p.name.split("_")[0] for p in wb.glob("files/media/images/sas/figures/*.png")} == {"scores", "map", "grid"}
    assert "sas" in capsys.readouterr().out


def test_rerun_reads_back_and_other_config_is_not_overwritten(tmp_path):
    first = run(cfg_for(tmp_path))
    stamp = (tmp_path / "run" / "results.json").stat().st_mtime_ns
    assert run(cfg_for(tmp_path)) == first
    assert (tmp_path / "run" / "results.json").stat().st_mtime_ns == stamp  # read back, not recomputed
    with pytest.raises(ConfigError, match="holds a run of another config.*overwrite=true"):
        run(cfg_for(tmp_path, "sampler.ipc=1"))
    run(cfg_for(tmp_path, "sampler.ipc=1", "overwrite=true"))
    assert json.loads((tmp_path / "run" / "results.json").read_text())["ipc"] == 1


def test_killed_run_resumes_to_the_same_results(tmp_path, monkeypatch):
    import sas.evaluation.protocol as ev
    reference = run(cfg_for(tmp_path, "eval.repeats=2", out="ref"))
    real_run_repeat = ev.run_repeat
    calls = []

    def dying(*args, **kw):
        if len(calls) == 1:
            raise KeyboardInterrupt("killed during the second repeat")
        calls.append(1)
        return real_run_repeat(*args, **kw)

    monkeypatch.setattr(ev, "run_repeat", dying)
    with pytest.raises(KeyboardInterrupt):
        run(cfg_for(tmp_path, "eval.repeats=2"))
    assert not (tmp_path / "run" / "results.json").exists()
    assert len((tmp_path / "run" / "eval_repeats.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(ev, "run_repeat", lambda *a, **k: calls.append(2) or real_run_repeat(*a, **k))
    assert run(cfg_for(tmp_path, "eval.repeats=2")) == reference
    assert calls == [1, 2]  # only the unfinished repeat ran again
    assert len(pool_dirs(tmp_path)) == 1


@pytest.mark.parametrize("override,key", [("sampler.candidate_ratio=1.5", "candidate_ratio"),
                                          ("sampler.ipc=0", "ipc"), ("sampler.pool_mult=0", "pool_mult"),
                                          ("eval.lr=0", "eval.lr")])
def test_config_validation_names_the_key_before_any_work(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        run(cfg_for(tmp_path, override))
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()  # nothing generated or written


def test_unknown_group_option(tmp_path):
    with pytest.raises(MissingConfigException, match="sampler.*topk"):
        cfg_for(tmp_path, "sampler=topk")


def distill(tmp_path, *args):
    """`python distill.py ARGS` with the test's cache and outputs (in this process: tests/hydra_app.py)."""
    from hydra_app import run_distill
    code = run_distill([*args, f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_root={tmp_path / 'outputs'}"],
                       cwd=tmp_path)
    assert code == 0, f"distill.py exited with {code}"


def test_multirun_pool_mult_sweep_makes_one_pool(tmp_path):
    distill(tmp_path, "-m", "experiment=smoke", "sampler.ipc=2", "sampler.pool_mult=3,2,1")
    jobs = sorted((tmp_path / "outputs" / "smoke" / "multirun").glob("*pool_mult=*"))
    assert [j.name for j in jobs] == [f"sampler.ipc=2,sampler.pool_mult={m}" for m in (1, 2, 3)]
    assert [json.loads((j / "results.json").read_text())["pool_mult"] for j in jobs] == [1, 2, 3]
    (pool,) = pool_dirs(tmp_path)  # one pool for the three jobs, generated once: 3 x IPC 2 x 10 classes
    assert len(list(pool.rglob("*.png"))) == 60
    assert len(list((tmp_path / "cache" / "embeddings").glob("*.pt"))) == 1
    for j in jobs:  # one W&B run per job
        assert len(list(j.glob("wandb/offline-run-*"))) == 1


def test_multirun_samplers_share_the_pool(tmp_path):
    distill(tmp_path, "-m", "experiment=smoke", "sampler=sas,random", "sampler.ipc=2", "sampler.pool_mult=2")
    jobs = sorted((tmp_path / "outputs" / "smoke" / "multirun").glob("*sampler=*"))
    assert [j.name for j in jobs] == [f"sampler.ipc=2,sampler.pool_mult=2,sampler={s}" for s in ("random", "sas")]
    res = [json.loads((j / "results.json").read_text()) for j in jobs]
    assert [r["sampler"] for r in res] == ["random", "sas"]
    assert len(pool_dirs(tmp_path)) == 1


DEMO = ("sas", "random", "kcenter", "mixed", "diffguided", "s3")


def test_demo_preset_on_a_reduced_size(tmp_path, capsys):
    best = run(cfg_for(tmp_path, "pool.train.generator.epochs=1", "pool.source.num_inference_steps=5",
                       "sampler.ipc=2", "sampler.pool_mult=2", "encoder.epochs=1", "eval.epochs=2",
                       "compare.diffguided.classifier_epochs=1", "pictures=false",
                       "eval.evaluations=1", "eval.repeats=1", "progress=false", "map_method=pca",
                       experiment="demo"),
               choices={"sampler": "sas"})
    out = tmp_path / "run"
    res = json.loads((out / "results.json").read_text())
    assert set(res["samplers"]) == set(DEMO) and res["best_top1_mean"] == best
    for name in DEMO[1:]:
        assert len((out / "compare" / name / "distilled" / "manifest.jsonl").read_text().splitlines()) == 20
    from sas.data.distilled import read_manifest
    rows = read_manifest(out / "compare" / "diffguided" / "distilled")
    assert all(0 <= r["difficulty"] <= 1 for r in rows)                 # the score it sampled by, recorded
    for c in range(10):                   # s3: a whole subgroup, pool images 4c, 4c+1 or 4c+2, 4c+3 (pool order)
        chosen = sorted(r["pool_index"] for r in read_manifest(out / "compare" / "s3" / "distilled") if r["label"] == c)
        assert chosen in ([4 * c, 4 * c + 1], [4 * c + 2, 4 * c + 3])
    assert list((tmp_path / "cache" / "generators").glob("ddpm-*/DONE"))  # the DDPM was trained and cached
    trained = [json.loads(p.read_text())["settings"]["model"] for p in (tmp_path / "cache" / "real_runs").glob("*.json")]
    assert {"_target_": "sas.models.convnet.ConvNet", "depth": 3, "width": 64} in trained   # the domain encoder
    assert len(trained) == 2                             # and diffguided's classifier (the evaluation model)
    printed = capsys.readouterr().out
    assert all(n in printed for n in DEMO) and str(out) in printed
    # one W&B curve per training: every sampler's repeats under its own name
    (wb,) = out.glob("wandb/offline-run-*")
    keys = {k for h in read_offline_run(wb)["history"] for k in h}
    assert {f"{s}/repeat0/val/top1" for s in DEMO} <= keys
    assert "repeat0/val/top1" not in keys
    from sas.report import build_report
    text = build_report([out], tmp_path / "report")                 # what make demo writes after the run
    head = next(line for line in text.splitlines() if line.startswith("| runs"))
    assert all(f"{n} best" in head for n in DEMO)
    assert (tmp_path / "report" / "comparison.csv").read_text().count("\n") == 1 + len(DEMO)
    side = text.split("### Set quality and cost")[1].splitlines()       # the quality and cost columns
    assert side[2].startswith("| runs | sampler | FD | precision | recall | density | coverage | select s")
    rows = [line.split(" | ") for line in side[4:4 + len(DEMO)]]
    assert [r[1] for r in rows] == list(DEMO) and all(float(r[2]) > 0 and float(r[-2]) > 0 for r in rows)


def test_whole_pool_kcenter_needs_the_real_pool(tmp_path):
    from sas.config import build_plan
    with pytest.raises(ConfigError, match=r"pool_mult=null \(the whole pool\) needs pool=real"):
        build_plan(cfg_for(tmp_path, "sampler=kcenter_real", "sampler.pool_mult=null"))
    plan = build_plan(cfg_for(tmp_path, "sampler=kcenter_real", "sampler.pool_mult=null", "pool=real",
                              "encoder=resnet_tiny"))
    assert plan.n_per_class is None


def test_class_ranks_follow_each_class_in_pool_order():
    from sas.artifacts import Pool
    pool = Pool(tuple(f"{i}.png" for i in range(9)), (0, 0, 0, 1, 1, 2, 2, 2, 2), None)
    assert pool.ranks() == [0, 1, 2, 0, 1, 0, 1, 2, 3]
    assert pool.first_indices(2) == [0, 1, 3, 4, 5, 6] and pool.first_indices(None) == list(range(9))
    with pytest.raises(ValueError, match="one label per file"):
        Pool(("a.png",), (0, 1), None)
