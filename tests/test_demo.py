"""The interim main job (`make demo`): real selection and evaluation on digits."""

import json

from sas import demo


def test_demo_selects_evaluates_and_writes_report(tmp_path, capsys):
    demo.main(["--ipc", "3", "--pool-mult", "2", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "selection_report.json").read_text())
    assert report["pool_size"] == 60 and report["test_size"] == 540
    by_name = {r["sampler"]: r for r in report["rows"]}
    assert {"sas", "mixed (lam 0.1)", "kcenter", "herding", "random (seed 0)"} <= set(by_name)
    for row in report["rows"]:
        assert len(row["selected"]) == 30
        assert row["test_accuracy"] > 0.5  # 30 real digits train far above chance (0.1)
    # SAS's stage 1 keeps high-margin images: its selection's mean margin beats random's
    assert by_name["sas"]["mean_margin"] > by_name["random (seed 0)"]["mean_margin"]
    out = capsys.readouterr().out
    assert "random (mean +- std)" in out and str(tmp_path) in out
