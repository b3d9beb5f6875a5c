"""Tables and figures of the paper from run folders (or a W&B project).

    from sas.report import build_report
    build_report(["outputs/table1", "outputs/table4"], "report/")   # report.md, report.tex, curves
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_report"]


def build_report(roots=(), out="report", tables=None, wandb_path: str | None = None) -> str:
    from sas.io import atomic_write_text
    from sas.report.figures import curve_figure
    from sas.report.tables import (TABLES, build_table, collect_runs, render_latex, render_markdown,
                                   runs_from_wandb)

    runs = runs_from_wandb(wandb_path) if wandb_path else collect_runs(roots)
    out = Path(out)
    md, tex = ["# SAS reproduction report", ""], []
    failed = [r for r in runs if r.status == "failed"]
    for key in tables or list(TABLES):
        table = build_table(TABLES[key], runs)
        if not any(run is not None for run in table["cells"].values()):
            continue
        md.append(render_markdown(table))
        tex.append(render_latex(table))
        if key in ("table4", "fig5"):
            curve_figure(table, out / f"{key}.png")
            md.append(f"![{key}]({key}.png)\n")
    if failed:
        md.append("### Failed jobs\n")
        md += [f"- `{r.path}`: {r.error}" for r in failed]
        md.append("")
    text = "\n".join(md)
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "report.tex", "\n".join(tex))
    return text
