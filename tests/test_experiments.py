"""Paper presets (every smoke variant runs), the report (exact tables, errors, failures), SLURM's code path
through submitit's local executor, concurrent jobs on one pool, and Optuna tuning on the holdout split."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

import sas.config  # noqa: F401  (the distill config schema)

from hydra_app import run_distill
from sas.report import build_report
from sas.report.tables import TABLES, ReportError, build_table, collect_runs, render_latex, render_markdown

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SMOKES = sorted(p.stem for p in (CONF / "experiment").glob("*_smoke.yaml"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One cache for all presets: tiny generators are trained once, as on a real shared filesystem."""
    return tmp_path_factory.mktemp("shared")


def distill(cache, outputs, *args):
    """`python distill.py ARGS` (in this process: tests/hydra_app.py), the cache and outputs given."""
    code = run_distill([*args, f"paths.cache_dir={cache}", f"paths.output_root={outputs}"], cwd=outputs.parent)
    assert code == 0, f"distill.py exited with {code}"


def distill_process(cache, outputs, *args):
    """The same in a process of its own (submitit pickles the task function of a real command line)."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, str(ROOT / "distill.py"), *args, f"paths.cache_dir={cache}",
                           f"paths.output_root={outputs}"], capture_output=True, text=True, env=env, cwd=outputs.parent)
    assert proc.returncode == 0, proc.stderr[-4000:]


def sweep_params(experiment):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("distill", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    return dict(cfg.hydra.sweeper.get("params") or {})


def test_every_paper_result_has_a_preset_and_a_smoke_variant():
    full = {"table1", "table1_real", "table2", "table3", "table4", "table5", "table6", "fig3", "fig5", "tune_sas"}
    assert {f"{n}_smoke" for n in full} <= set(SMOKES)
    for name in full - {"tune_sas"}:
        assert set(sweep_params(name)) == set(sweep_params(f"{name}_smoke")) - {"pool", "sampler"} | (
            set(sweep_params(name)) & {"pool", "sampler"}), name  # the smoke sweeps the same axes


# imagenet1k_smoke reads an ImageNet-layout tree of 1,000 classes: test_scale.py builds one and runs it
@pytest.mark.parametrize("preset", [s for s in SMOKES if s not in ("tune_sas_smoke", "imagenet1k_smoke")])
def test_smoke_preset_runs(preset, shared, tmp_path):
    params = sweep_params(preset)
    out = tmp_path / "outputs"
    out.mkdir()
    distill(shared, out, *(["-m"] if params else []), f"experiment={preset}")
    done = sorted(p.parent for p in out.rglob("results.json"))
    expected = 1
    for values in params.values():
        expected *= len(str(values).split(","))
    assert len(done) == expected and not list(out.rglob("failed.json"))
    for job in done:
        res = json.loads((job / "results.json").read_text())
        assert 0 <= res["best_top1_mean"] <= 1 and (job / "distilled" / "manifest.jsonl").is_file()
    # the report of the preset's own runs: one comparison cell per (varying settings, sampler), none empty
    from sas.report.compare import collect_entries, comparison
    entries, skipped = collect_entries([out])
    table = comparison(entries, skipped)
    assert len(entries) == expected and not skipped and table["cells"]
    assert all(c["n"] >= 1 and c["best"] is not None for c in table["cells"].values())
    assert {e.sampler for e in entries} == set(table["samplers"])


def test_tune_sas_smoke_uses_the_holdout_split(shared, tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    distill(shared, out, "-m", "experiment=tune_sas_smoke")
    best = yaml.safe_load(next(out.rglob("optimization_results.yaml")).read_text())
    assert set(best["best_params"]) == {"sampler.candidate_ratio", "sampler.pool_mult"}
    jobs = [json.loads(p.read_text()) for p in out.rglob("results.json")]
    assert len(jobs) == 3 and all(j["eval_split"] == "holdout" for j in jobs)
    assert all("digits" in j["samplers"]["sas"]["evaluation"]["val_source"] and
               "train" in j["samplers"]["sas"]["evaluation"]["val_source"] for j in jobs)  # never the test split


# ----------------------------------------------------------------------------- the report on synthetic runs

def fake_run(root, name, *, pool="Minimax", sampler="sas", ipc=10, pool_mult=4, model="resnet_ap10",
             best=(0.5, 0.01), lr=0.01, failed=False, ratio=0.5):
    job = root / name
    job.mkdir(parents=True)
    cfg = {"name": "x", "dataset": {"name": "imagewoof"}, "pool": {"label": pool},
           "sampler": {"ipc": ipc, "pool_mult": pool_mult, "candidate_ratio": ratio},
           "model": {"name": model}, "eval": {"lr": lr}, "eval_split": "val"}
    (job / "config.yaml").write_text(yaml.safe_dump(cfg))
    (job / "choices.json").write_text(json.dumps({"sampler": sampler, "model": model, "pool": pool.lower()}))
    if failed:
        (job / "failed.json").write_text(json.dumps({"error": "RuntimeError: CUDA out of memory"}))
    else:
        (job / "results.json").write_text(json.dumps({"best_top1_mean": best[0], "best_top1_std": best[1],
                                                      "last_top1_mean": best[0] - 0.01, "last_top1_std": 0.0}))
    return job


def test_report_table_text_exact(tmp_path):
    fake_run(tmp_path, "a", pool_mult=3, ipc=10, best=(0.381, 0.007))
    fake_run(tmp_path, "b", pool_mult=3, ipc=20, best=(0.462, 0.004))
    fake_run(tmp_path, "c", pool_mult=4, ipc=10, best=(0.405, 0.005))
    fake_run(tmp_path, "d", pool_mult=4, ipc=20, failed=True)
    fake_run(tmp_path, "e", pool_mult=5, ipc=50, best=(0.6, 0.0))
    fake_run(tmp_path, "other", pool_mult=3, ipc=10, sampler="none", best=(0.9, 0.0))  # another table's cell
    table = build_table(TABLES["table4"], collect_runs([tmp_path]))
    assert render_markdown(table) == (
        "### Table 4: pool size, ImageWoof, Minimax + SAS, ResNetAP-10\n\n"
        "| pool | IPC 10 | IPC 20 | IPC 50 |\n"
        "|---|---|---|---|\n"
        "| 3 x IPC | 38.1 ± 0.7 (38.1) | **46.2 ± 0.4** (45.4) | missing (55.1) |\n"
        "| 4 x IPC | **40.5 ± 0.5** (40.3) | failed (45.0) | missing (59.9) |\n"
        "| 5 x IPC | missing (35.0) | missing (41.3) | **60.0 ± 0.0** (58.2) |\n"
        "\nBest top-1 (%), mean ± std over repeats; the paper's figure in parentheses; bold: best of the row.\n"
        "\nFigures in parentheses: SAS (Li et al. 2026, arXiv:2605.18012), Table 4; hard labels, IDC protocol "
        "(SGD 0.01, CutMix, 3 repeats), ResNetAP-10, the real val split; shown only beside runs evaluated under that "
        "protocol.\n")
    tex = render_latex(table)
    assert r"\textbf{46.2 $\pm$ 0.4} (45.4)" in tex and r"failed (45.0)" in tex and r"\toprule" in tex


def test_published_figures_stand_only_beside_runs_of_their_protocol(tmp_path):
    import yaml
    fake_run(tmp_path, "hard", pool_mult=3, ipc=10, best=(0.381, 0.007))
    soft = fake_run(tmp_path, "soft", pool_mult=4, ipc=10, best=(0.5, 0.0))
    cfg = yaml.safe_load((soft / "config.yaml").read_text())
    cfg["eval"] = {"_target_": "sas.evaluation.softlabel.SoftLabelProtocol", "lr": 0.01}
    (soft / "config.yaml").write_text(yaml.safe_dump(cfg))
    holdout = fake_run(tmp_path, "holdout", pool_mult=5, ipc=10, best=(0.3, 0.0))
    cfg = yaml.safe_load((holdout / "config.yaml").read_text())
    cfg["eval_split"] = "holdout"
    (holdout / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = render_markdown(build_table(TABLES["table4"], collect_runs([tmp_path]))).splitlines()[4:7]
    assert "38.1 ± 0.7** (38.1)" in rows[0]                          # hard labels, val: the paper's 38.1
    assert "50.0 ± 0.0** |" in rows[1] and "(40.3)" not in rows[1]     # soft labels: no hard-label figure
    assert rows[2].startswith("| 5 x IPC | missing (35.0)")          # scored on the holdout split: not placed


def test_report_refuses_mismatched_settings_in_one_cell(tmp_path):
    fake_run(tmp_path, "a", pool_mult=4, ipc=10, lr=0.01)
    fake_run(tmp_path, "b", pool_mult=4, ipc=10, lr=0.02)
    with pytest.raises(ReportError, match=r"table4 cell \(4 x IPC, IPC 10\): runs with mismatched settings \(eval.lr\)"):
        build_table(TABLES["table4"], collect_runs([tmp_path]))


def test_build_report_writes_files_and_lists_failures(tmp_path):
    fake_run(tmp_path / "runs", "a", pool_mult=4, ipc=10)
    fake_run(tmp_path / "runs", "b", pool_mult=5, ipc=10, failed=True)
    text = build_report([tmp_path / "runs"], tmp_path / "report")
    assert "### Table 4" in text and "### Table 1" in text and "### Table 2" not in text   # tables with runs
    assert "- Table 2: ImageNette and ImageIDC, ResNetAP-10: expects runs with model=resnet_ap10, eval_split=val" \
        " (`python distill.py -m experiment=table2`)" in text                            # and those without
    assert "CUDA out of memory" in text and (tmp_path / "report" / "report.tex").is_file()
    assert (tmp_path / "report" / "table4.png").is_file()


def test_failed_job_is_recorded_and_the_sweep_goes_on(shared, tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    distill(shared, out, "-m", "experiment=smoke", "sampler.ipc=2", "sampler.candidate_ratio=0.5,1.5")
    (failed,) = list(out.rglob("failed.json"))
    assert "candidate_ratio" in json.loads(failed.read_text())["error"]
    (ok,) = [p.parent for p in out.rglob("results.json")]
    # Hydra's launch record, written by the run folder (hydra.output_subdir is null), for the failed job too
    assert "sampler.candidate_ratio=1.5" in (failed.parent / ".hydra" / "overrides.yaml").read_text()
    assert "sampler.candidate_ratio=0.5" in (ok / ".hydra" / "overrides.yaml").read_text()
    assert {p.name for p in (ok / ".hydra").iterdir()} == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    runs = collect_runs([out])
    assert sorted(r.status for r in runs) == ["failed", "ok"]


# ----------------------------------------------------------------------------- scale past one machine

def test_submitit_local_launcher(shared, tmp_path):
    out = tmp_path / "outputs"
    out.mkdir()
    distill_process(shared, out, "-m", "hydra/launcher=local", "experiment=smoke", "sampler=sas", "sampler.ipc=2",
                    "sampler.pool_mult=2")
    (done,) = list(out.rglob("results.json"))
    assert json.loads(done.read_text())["best_top1_mean"] >= 0
    assert list(out.rglob(".submitit/*/*_result.pkl"))  # the job really went through submitit (its result file)


def test_two_jobs_at_once_share_one_pool(tmp_path):
    """Two processes fill one pool at once: a job in a process of its own and one in the test's process."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    cache = tmp_path / "cache"
    args = ["experiment=smoke", "sampler.ipc=3", "sampler.pool_mult=3", f"paths.cache_dir={cache}",
            f"paths.output_root={tmp_path / 'outputs'}"]
    other = subprocess.Popen([sys.executable, str(ROOT / "distill.py"), *args, "name=job1"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):                          # start once the other job has begun filling the cache
            if (cache / "pools").exists() or other.poll() is not None:
                break
            time.sleep(0.1)
        assert run_distill([*args, "name=job0"], cwd=tmp_path) == 0
    finally:
        _, err = other.communicate(timeout=600)
    assert other.returncode == 0, err[-3000:]
    (pool,) = (cache / "pools").iterdir()
    pngs = list(pool.rglob("*.png"))
    assert len(pngs) == 90 and not [p for p in pool.rglob(".*") if p.name != ".lock"]  # no stray temp files
    jobs = [next((tmp_path / "outputs" / f"job{i}").rglob("results.json")).parent for i in range(2)]
    a, b = (json.loads((j / "results.json").read_text()) for j in jobs)
    assert a["best_top1_mean"] == b["best_top1_mean"]
    assert (jobs[0] / "distilled" / "manifest.jsonl").read_text() == (jobs[1] / "distilled" / "manifest.jsonl").read_text()


def full_run(root, name, sampler, ipc, best, model="convnet_tiny", ratio=None, scores=None, extra=None):
    """A finished job folder as the pipeline writes it: config.yaml, results.json with per-sampler repeats."""
    job = root / name
    job.mkdir(parents=True)
    scfg = {"_target_": "x", "ipc": ipc, "pool_mult": 4, **({"candidate_ratio": ratio} if ratio else {})}
    (job / "config.yaml").write_text(yaml.safe_dump({"dataset": {"name": "digits"}, "sampler": scfg,
                                                     "eval": {"lr": 0.01}, "seed": 0, "name": "x"}))
    (job / "choices.json").write_text(json.dumps({"sampler": sampler}))
    samplers = {}
    for s, vals in best.items():
        own = scfg if s == "sas" else {k: v for k, v in scfg.items() if k != "candidate_ratio"}
        samplers[s] = {"sampler": {**own, "name": s}, "evaluation": {
            "repeats": [{"best_top1": v, "last_top1": v - 0.01} for v in vals]}}
        if scores and s in scores:
            samplers[s]["ddranking"] = scores[s]
    head = [r["best_top1"] for r in samplers[sampler]["evaluation"]["repeats"]]
    summary = {"best_top1_mean": sum(head) / len(head), "best_top1_std": 0.0, "last_top1_mean": 0.0,
               "last_top1_std": 0.0}
    (job / "results.json").write_text(json.dumps({"choices": {"sampler": sampler, "model": model, "pool": "p",
                                                              "dataset": "digits", **(extra or {})},
                                                  "samplers": samplers, **summary}))


def test_comparison_table_of_any_runs(tmp_path):
    from sas.report.compare import collect_entries, comparison, render_markdown, write_csv
    full_run(tmp_path, "a", "sas", 2, {"sas": [0.80, 0.84], "random": [0.70, 0.72]}, ratio=0.5,
             scores={"sas": {"hlr": [0.1, 0.1], "ior": [0.10, 0.12], "ior_pool": [0.02, 0.04], "ddrs": [0.5, 0.6],
                             "lrs": [-0.1, -0.2]}})
    full_run(tmp_path, "b", "sas", 2, {"sas": [0.90, 0.90]}, ratio=1.0)
    full_run(tmp_path, "c", "sas", 5, {"sas": [0.60, 0.60], "random": [0.65, 0.65]}, ratio=0.5)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "failed.json").write_text("{}")
    entries, skipped = collect_entries([tmp_path])
    table = comparison(entries, skipped)
    assert table["keys"] == ["sampler.ipc", "sampler.candidate_ratio"]     # what varies, sampler aside
    text = render_markdown(table)
    assert text.splitlines()[2] == (
        "| ipc | candidate_ratio | sas best (%) | sas last (%) | sas HLR (pp) | sas IOR (pp) | sas IOR pool (pp) | "
        "sas DDRS | sas LRS | sas n | random best (%) | random last (%) | random HLR (pp) | random IOR (pp) | "
        "random IOR pool (pp) | random DDRS | random LRS | random n |")
    rows = [line for line in text.splitlines() if line.startswith("| 2 ") or line.startswith("| 5 ")]
    assert rows == [
        "| 2 | 0.5 | **82.0 ± 2.0** | 81.0 ± 2.0 | 10.0 ± 0.0 | 11.0 ± 1.0 | 3.0 ± 1.0 | 0.550 ± 0.050 | "
        "-0.150 ± 0.050 | 1 | 71.0 ± 1.0 | 70.0 ± 1.0 |  |  |  |  |  | 1 |",
        "| 2 | 1.0 | **90.0 ± 0.0** | 89.0 ± 0.0 |  |  |  |  |  | 1 | 71.0 ± 1.0 | 70.0 ± 1.0 |  |  |  |  |  | 1 |",
        "| 5 | 0.5 | 60.0 ± 0.0 | 59.0 ± 0.0 |  |  |  |  |  | 1 | **65.0 ± 0.0** | 64.0 ± 0.0 |  |  |  |  |  | 1 |"]
    assert "d: failed" in text.splitlines()[-1]
    write_csv(table, tmp_path / "c.csv")
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0].startswith("sampler.ipc,sampler.candidate_ratio,sampler,n_runs,best_mean,best_std")
    assert len(lines) == 1 + 6 and lines[1].startswith("2,0.5,sas,1,0.82")
