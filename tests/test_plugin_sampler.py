"""The plug-in pattern: a Sampler subclass and a YAML file outside sas/ get the whole pipeline, the report
and W&B grouping (experiments/samplers/chordal.py, experiments/conf/sampler/sas_chordal.yaml)."""

import json
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]


def test_chordal_sas_candidates_follow_the_chordal_margin(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from experiments.samplers.chordal import ChordalSAS

    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    y = torch.arange(40) % 4
    sel = ChordalSAS(ipc=2, candidate_ratio=0.5)(x, y, t)
    u, tn = (x / x.norm(dim=1, keepdim=True)).numpy(), (t / t.norm(dim=1, keepdim=True)).numpy()
    for c in range(4):                                    # a literal loop over the class's images
        rows = [i for i in range(40) if y[i] == c]
        margin = {i: -np.linalg.norm(u[i] - tn[c]) + min(np.linalg.norm(u[i] - tn[o]) for o in range(4) if o != c)
                  for i in rows}
        top = sorted(rows, key=lambda i: (-margin[i], i))[:5]
        assert sorted(np.flatnonzero(sel.candidate.numpy() & (y.numpy() == c))) == sorted(top)
        assert int((sel.selected & (y == c)).sum()) == 2 and set(np.flatnonzero(
            (sel.selected & (y == c)).numpy())) <= set(top)


def test_plugin_sampler_runs_the_whole_job_with_report_and_wandb_grouping(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import sas.config  # noqa: F401
    from sas.pipeline import run
    from sas.report.compare import collect_entries, comparison
    from wandb_offline import read_offline_run

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("distill", overrides=[f"hydra.searchpath=[file://{ROOT / 'experiments' / 'conf'}]",
                                            "experiment=smoke", "sampler=sas_chordal", "sampler.ipc=2",
                                            "sampler.pool_mult=2", f"paths.cache_dir={tmp_path / 'cache'}",
                                            f"paths.output_dir={tmp_path / 'run'}", "logger.mode=offline"])
    run(cfg, choices={"sampler": "sas_chordal", "dataset": "digits"})
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(res["samplers"]) == {"sas_chordal"} and res["samplers"]["sas_chordal"]["sampler"]["candidate_ratio"]
    entries, skipped = collect_entries([tmp_path / "run"])
    assert comparison(entries, skipped)["samplers"] == ["sas_chordal"]       # its own report column
    wandb_dir = next((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert read_offline_run(wandb_dir)["config"]["group_by"]["sampler"] == "sas_chordal"
