"""W&B dashboards built from code (wandb-workspaces): a workspace and a report that compare samplers.

    ws = build_workspace("my-entity", "sas", sweep="table4")     # wandb_workspaces.workspaces.Workspace
    rep = build_wandb_report("my-entity", "sas")                        # wandb_workspaces.reports.v2.Report
    ws.save(); rep.save()                                         # (needs the network and a W&B login)

Both read what sas.tracking.Tracker logs: every distill run has `config.group_by` (dataset, sampler, ipc,
pool_mult, model, pool, encoder, eval), its W&B group is the experiment name (`name`: table1, demo, ...),
its summary holds best/last top-1 mean and std (and ddranking/* when computed), its history the per-repeat
validation curves `<sampler>/repeat<r>/val/top1` (Lightning's `trainer/global_step` holds the epoch) and the images `<sampler>/selected` and `<sampler>/figures/*`.

The workspace: runs grouped by sampler; a section for the current sweep (or all runs), with bar charts of
best and last top-1 by sampler (mean, std error bars over runs) and DD-Ranking's IOR / DDRS; per-repeat
validation curves; the selected-image grids and the selection figures side by side. The report: one
section per paper table (runs of that experiment, grouped by the table's varying keys) plus the sweep.
"""

from __future__ import annotations

__all__ = ["build_workspace", "build_wandb_report", "TABLE_GROUPS", "sampler_panels", "CURVE_X", "curve_regex",
           "experiment_filter"]

# each paper table's experiment name -> the config keys its cells vary over (besides the sampler)
TABLE_GROUPS = {
    "table1": ["group_by.model", "group_by.ipc", "group_by.pool"], "table1_real": ["group_by.model", "group_by.ipc"],
    "table2": ["group_by.dataset", "group_by.ipc", "group_by.pool"], "table3": ["group_by.ipc", "group_by.pool"],
    "table4": ["group_by.pool_mult", "group_by.ipc"], "table5": ["group_by.ipc"], "table6": ["group_by.ipc"],
    "fig5": ["sampler.candidate_ratio"], "imagenet1k": ["group_by.ipc", "group_by.pool"],
}


CURVE_X = "trainer/global_step"


def curve_regex(metric: str) -> str:
    """The keys of one metric of every sampler's own evaluation repeats: <sampler>/repeat<r>/<metric>."""
    return rf"^[^/]+/repeat\d+/{metric}$"


def sampler_panels(wr, groupby: str = "group_by.sampler") -> list:
    """Bar charts of the headline figures by sampler (mean over runs, std error bars)."""
    bars = dict(groupby=groupby, groupby_aggfunc="mean", groupby_rangefunc="stddev")
    return [wr.BarPlot(title="best top-1 by sampler", metrics=[wr.SummaryMetric("best_top1_mean")], **bars),
            wr.BarPlot(title="last top-1 by sampler", metrics=[wr.SummaryMetric("last_top1_mean")], **bars),
            wr.BarPlot(title="DD-Ranking IOR by sampler", metrics=[wr.SummaryMetric("ddranking/ior_mean")], **bars),
            wr.BarPlot(title="DD-Ranking DDRS by sampler", metrics=[wr.SummaryMetric("ddranking/ddrs_mean")],
                       **bars)]


def _curves(wr) -> list:
    # each sampler's own evaluation runs (not DD-Ranking's, logged under <sampler>/ddranking_*/); the x axis is
    # the step Lightning's W&B logger records with every log call, which sas's classifier sets to the epoch
    return [wr.LinePlot(title="validation top-1 per repeat", x=CURVE_X, metric_regex=curve_regex("val/top1"),
                        groupby="group_by.sampler", groupby_aggfunc="mean", groupby_rangefunc="stddev"),
            wr.LinePlot(title="training loss per repeat", x=CURVE_X, metric_regex=curve_regex("train/loss"))]


def _media(wr, samplers) -> list:
    keys = [k for s in samplers for k in (f"{s}/selected", f"{s}/figures/grid", f"{s}/figures/map",
                                           f"{s}/figures/scores")]
    return [wr.MediaBrowser(title="selected images and selection figures", media_keys=keys, mode="grid",
                            grid_x_axis="run", num_columns=4)]


def build_workspace(entity: str, project: str, sweep: str | None = None,
                    samplers=("sas", "random", "kcenter", "mixed"), name: str | None = None):
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    where = f"experiment {sweep}" if sweep else "all runs"
    sections = [
        ws.Section(name=f"Samplers: {where}", panels=sampler_panels(wr), is_open=True),
        ws.Section(name="Validation curves", panels=_curves(wr), is_open=True),
        ws.Section(name="Selections", panels=_media(wr, samplers), is_open=False),
    ]
    settings = ws.RunsetSettings(filters=experiment_filter(sweep) if sweep else "",
                                 groupby=[ws.Config("group_by.sampler")])
    return ws.Workspace(entity=entity, project=project, name=name or _display(f"sas: {where}"), sections=sections,
                        runset_settings=settings)


def _display(text: str) -> str:
    """A workspace title W&B accepts: symbol characters (=, <, +, $, ^, ...: Unicode categories S*) refused in
    names become '_'; the filter keeps the experiment name exact."""
    import unicodedata
    return "".join("_" if unicodedata.category(ch).startswith("S") else ch for ch in text)


def experiment_filter(name: str) -> str:
    """W&B's filter expression for the runs of one experiment (config `name`), the value written as a Python
    literal (repr), which W&B's parser reads back exactly whatever quotes or backslashes the name holds.
    (wandb-workspaces' own FilterExpr-to-string path neither escapes quotes nor keeps a config key `name`.)"""
    return f"Config('name') == {str(name)!r}"


def build_wandb_report(entity: str, project: str, sweep: str | None = None, tables=tuple(TABLE_GROUPS)):
    """A report with one section per paper table (its runs, grouped by its varying keys and the sampler) and
    one for the sweep."""
    import wandb_workspaces.reports.v2 as wr

    blocks = [wr.H1("SAS: samplers compared"),
              wr.P("Best / last top-1 (mean over runs, std error bars) by sampler; DD-Ranking where computed.")]
    for key in ([sweep] if sweep else []) + [t for t in tables if t != sweep]:
        group = [*TABLE_GROUPS.get(key, []), "group_by.sampler"]
        runset = wr.Runset(entity=entity, project=project, name=key, filters=experiment_filter(key), groupby=group)
        blocks += [wr.H2(f"{key}{' (current sweep)' if key == sweep else ''}"),
                   wr.PanelGrid(runsets=[runset], panels=sampler_panels(wr, groupby="group_by.sampler")
                                + _curves(wr))]
    return wr.Report(project=project, entity=entity, title="SAS comparison", blocks=blocks)
