"""Reports from run folders (or a W&B project): a comparison of whatever runs there are, and the paper's tables.

    from sas.report import build_report
    build_report(["outputs/"], "report/")    # report.md, report.tex, comparison.csv, curves

The comparison table (sas.report.compare) covers every finished run: the demo, smoke presets, dataset=folder
runs, any sweep. The paper's tables follow for the runs that match their settings; a paper table without
runs is listed with the settings it expects.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_report"]


def build_report(roots=(), out="report", tables=None, wandb_path: str | None = None) -> str:
    from sas.io import atomic_write_text
    from sas.report.compare import comparison, entries_from_records, write_csv
    from sas.report.compare import render_latex as compare_latex
    from sas.report.compare import render_markdown as compare_markdown
    from sas.report.figures import curve_figure
    from sas.report.tables import (TABLES, build_table, render_latex, render_markdown, runs_from_records,
                                   runs_from_wandb)
    from sas.run_folder import RunFolder

    records = [] if wandb_path else [f.read() for f in RunFolder.find(roots)]     # the one run collector
    runs = runs_from_wandb(wandb_path) if wandb_path else runs_from_records(records)
    out = Path(out)
    md, tex = ["# SAS report", ""], []
    if not wandb_path:
        entries, skipped = entries_from_records(records)
        if entries:
            cmp = comparison(entries, skipped)
            md.append(compare_markdown(cmp))
            tex.append(compare_latex(cmp))
            write_csv(cmp, out / "comparison.csv")
            md.append("Per cell as CSV: `comparison.csv`.\n")
        else:
            md.append("No finished runs under " + ", ".join(map(str, roots)) + (
                f" ({len(skipped)} left out: " + "; ".join(skipped[:5]) + ")" if skipped else "") + ".\n")
    failed = [r for r in runs if r.status == "failed"]
    empty = []
    for key in tables or list(TABLES):
        table = build_table(TABLES[key], runs)
        if not any(run is not None for run in table["cells"].values()):
            empty.append(f"- {TABLES[key].title}: expects runs with "
                         + ", ".join(f"{k}={v}" for k, v in TABLES[key].common.items())
                         + f" (`python distill.py -m experiment={key}`)")
            continue
        md.append(render_markdown(table))
        tex.append(render_latex(table))
        if key in ("table4", "fig5"):
            curve_figure(table, out / f"{key}.png")
            md.append(f"![{key}]({key}.png)\n")
    if empty:
        md += ["### Paper tables without runs", "", *empty, ""]
    if failed:
        md.append("### Failed jobs\n")
        md += [f"- `{r.path}`: {r.error}" for r in failed]
        md.append("")
    text = "\n".join(md)
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "report.tex", "\n".join(tex))
    return text
