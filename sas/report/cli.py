"""Reports from run folders: a comparison of every run found, the paper's tables and figures.

    sas-report tables outputs/ --out report/                    # any runs: demo, smoke, sweeps
    sas-report tables --wandb my-entity/sas --out report/        # paper tables from a W&B project
    sas-report figures outputs/fig3 --out report/                # Fig. 3 t-SNE, Fig. 4 grid

Writes report.md / report.tex (a comparison table of every finished run: rows the settings that vary, one
column per sampler, mean +- std, best per row in bold, DD-Ranking's HLR / IOR / DDRS when computed; then
the paper's tables with its figures in parentheses, missing and failed cells marked), comparison.csv and
PNG figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tables", help="tables from run folders or a W&B project")
    t.add_argument("roots", nargs="*", help="folders holding runs (searched recursively)")
    t.add_argument("--wandb", help="entity/project to read instead of folders (needs the network)")
    t.add_argument("--tables", nargs="*", help="which tables (default: every table with runs)")
    t.add_argument("--out", default="report")
    f = sub.add_parser("figures", help="Fig. 3 (t-SNE) and Fig. 4 (margin grid) of one run")
    f.add_argument("run", help="a run folder (holding results.json)")
    f.add_argument("--out", default="report")
    args = ap.parse_args(argv)
    if args.cmd == "tables":
        from sas.report import build_report
        if not args.roots and not args.wandb:
            ap.error("give run folders or --wandb entity/project")
        print(build_report(args.roots, args.out, args.tables, args.wandb))
        print(f"report: {Path(args.out) / 'report.md'}")
    else:
        from sas.report.figures import margin_grid, tsne_figure
        out = Path(args.out)
        print(tsne_figure(args.run, out / "fig3_tsne.png"))
        print(margin_grid(args.run, out / "fig4_margins.png"))
    return 0
