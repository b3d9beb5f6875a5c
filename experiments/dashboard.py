"""Build the W&B workspace and report that compare samplers (sas/report/dashboard.py), and save them.

    python experiments/dashboard.py --entity my-entity --project sas                 # all runs
    python experiments/dashboard.py --entity my-entity --project sas --sweep table4  # one experiment's runs
    python experiments/dashboard.py --entity E --project P --dry-run                 # build only, print the layout

Saving needs the network and a W&B login; --dry-run builds the same objects offline and prints their sections
and panels.
"""

import argparse
import sys


def describe(workspace, report) -> str:
    lines = [f"workspace '{workspace.name}': runs grouped by "
             + ", ".join(g.name for g in workspace.runset_settings.groupby)]
    for s in workspace.sections:
        lines.append(f"  section '{s.name}': " + "; ".join(p.title or type(p).__name__ for p in s.panels))
    lines.append(f"report '{report.title}': " + ", ".join(b.text for b in report.blocks if type(b).__name__ == "H2"))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entity", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--sweep", help="an experiment name (the runs' W&B group), e.g. table4 or demo")
    ap.add_argument("--samplers", nargs="*", default=["sas", "random", "kcenter", "mixed"])
    ap.add_argument("--dry-run", action="store_true", help="build and describe, do not save")
    args = ap.parse_args(argv)
    from sas.report.dashboard import build_wandb_report, build_workspace

    ws = build_workspace(args.entity, args.project, args.sweep, args.samplers)
    rep = build_wandb_report(args.entity, args.project, args.sweep)
    print(describe(ws, rep))
    if not args.dry_run:
        ws.save()
        rep.save()
        print(f"saved: {ws.url}\n       {rep.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
