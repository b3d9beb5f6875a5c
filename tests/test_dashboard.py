"""The W&B workspace and report are built offline from code (wandb-workspaces) with the panels and
groupings the tracker's logged keys need; nothing is saved (no network)."""

import json

from sas.report.dashboard import CURVE_X, TABLE_GROUPS, build_wandb_report, build_workspace, curve_regex


def test_workspace_groups_by_sampler_and_has_the_comparison_panels():
    ws = build_workspace("ent", "proj", sweep="table4", samplers=["sas", "random"])
    assert [g.name for g in ws.runset_settings.groupby] == ["group_by.sampler"]     # the tracker's group_by
    sections = {s.name: s for s in ws.sections}
    assert list(sections) == ["Samplers: experiment table4", "Validation curves", "Selections"]
    bars = sections["Samplers: experiment table4"].panels
    assert [p.metrics[0].name for p in bars] == ["best_top1_mean", "last_top1_mean", "ddranking/ior_mean",
                                                  "ddranking/ddrs_mean"]
    assert all(p.groupby == "group_by.sampler" and p.groupby_rangefunc == "stddev" for p in bars)  # error bars
    curves = sections["Validation curves"].panels
    import re
    assert curves[0].metric_regex == curve_regex("val/top1") and curves[0].x == CURVE_X
    # each sampler's own evaluation curves, not DD-Ranking's trainings (logged under <sampler>/ddranking_*/)
    assert [bool(re.search(curves[0].metric_regex, k)) for k in (
        "sas/repeat0/val/top1", "random/repeat12/val/top1", "sas/ddranking_random_pool/repeat0/val/top1",
        "sas/repeat0/val/best_top1")] == [True, True, False, False]
    media = sections["Selections"].panels[0]
    assert media.media_keys[:2] == ["sas/selected", "sas/figures/grid"] and "random/figures/map" in media.media_keys
    model = json.loads(ws._to_model().model_dump_json())          # the layout W&B stores, built offline
    text = json.dumps(model)
    assert text.count('"view_type": "Bar Chart"') == 4 and "summary_metrics.best_top1_mean" in text


def test_report_has_one_section_per_paper_table_and_the_sweep():
    rep = build_wandb_report("ent", "proj", sweep="demo")
    heads = [b.text for b in rep.blocks if type(b).__name__ == "H2"]
    assert heads == ["demo (current sweep)", *TABLE_GROUPS]
    grids = [b for b in rep.blocks if type(b).__name__ == "PanelGrid"]
    table4 = grids[1 + list(TABLE_GROUPS).index("table4")]
    assert table4.runsets[0].groupby == ["group_by.pool_mult", "group_by.ipc", "group_by.sampler"]
    assert table4.runsets[0].filters == "Config('name') == 'table4'"


def test_experiment_names_with_quotes_filter_to_exactly_that_name():
    """Filters are written from the value: W&B's parser reads back the very name, whatever it holds."""
    from wandb_workspaces import expr

    from sas.report.dashboard import experiment_filter
    for name in ["it's", 'say "hi"', "back\\slash", "a' or Config('x') == '1"]:
        parsed = expr.expr_to_filters(experiment_filter(name))
        assert (parsed.key.section, parsed.key.name, parsed.value, parsed.op) == ("config", "name", name, "=")
        ws = build_workspace("ent", "proj", sweep=name)
        text = json.dumps(json.loads(ws._to_model().model_dump_json()))          # W&B can parse the workspace
        assert json.dumps(name)[1:-1] in text
        rep = build_wandb_report("ent", "proj", sweep=name, tables=())
        assert expr.expr_to_filters(rep.blocks[-1].runsets[0].filters).value == name
