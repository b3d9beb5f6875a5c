"""The paper's tables from run folders: collect runs, place them in cells, render Markdown and LaTeX.

    runs = collect_runs(["outputs/table1", "outputs/table4"])     # every job folder under these roots
    text = render_markdown(build_table(TABLES["table1"], runs))

A cell holds the runs whose settings match its row, column and table filters
(dataset, pool, sampler, IPC, model, ...). Its text is our best top-1 mean +-
std over repeats (bold: the best of the row), then the paper's figure in
parentheses; "missing" when no run matches, "failed" when the matching job
failed (its failed.json), "damaged (<file>)" when one of its record files
does not parse (the job reruns when launched again). Two runs in one cell whose settings differ are an
error, never an average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sas.report.paper import PAPER, PROVENANCE

__all__ = ["Run", "ReportError", "TableSpec", "TABLES", "collect_runs", "runs_from_records", "runs_from_wandb",
           "build_table", "render_markdown", "render_latex"]

MODEL_LABELS = {"convnet6": "ConvNet-6", "resnet_ap10": "ResNetAP-10", "resnet18": "ResNet-18"}
DATASET_LABELS = {"imagenette": "ImageNette", "imageidc": "ImageIDC"}
# keys that say where or how a run was launched, not what it computed
_NOT_SETTINGS = ("name", "paths", "compare", "hydra")


class ReportError(ValueError):
    """Runs that cannot be placed in a table (mismatched settings in one cell)."""


@dataclass
class Run:
    path: str
    status: str                   # ok | failed | incomplete | damaged
    fields: dict                  # dataset, pool, sampler, model, ipc, pool_mult, candidate_ratio, lam, eval_split
    settings: dict                # the run's config, without launch-only keys
    best: tuple | None = None     # (mean, std) of the best top-1, in %
    last: tuple | None = None
    error: str | None = None

    def matches(self, flt: dict) -> bool:
        return all(self.fields.get(k) == v for k, v in flt.items())


def _fields(cfg: dict, choices: dict) -> dict:
    sampler = cfg.get("sampler", {})
    return {"dataset": cfg.get("dataset", {}).get("name"), "pool": cfg.get("pool", {}).get("label"),
            "sampler": choices.get("sampler"), "model": choices.get("model"), "ipc": sampler.get("ipc"),
            "pool_mult": sampler.get("pool_mult"), "candidate_ratio": sampler.get("candidate_ratio"),
            "lam": sampler.get("lam"), "eval_split": cfg.get("eval_split", "val")}


def runs_from_records(records) -> list[Run]:
    """The paper tables' view of run records (sas.run_folder.RunRecord): a damaged record file makes the cell say
    so (status "damaged", the file named in `error`), and the report goes on."""
    runs = []
    for rec in records:
        cfg = rec.config
        run = Run(rec.path, rec.status, _fields(cfg, rec.choices),
                  {k: v for k, v in cfg.items() if k not in _NOT_SETTINGS}, error=rec.error)
        if rec.status == "ok":
            res = rec.results
            run.best = (100 * res["best_top1_mean"], 100 * res["best_top1_std"])
            run.last = (100 * res["last_top1_mean"], 100 * res["last_top1_std"])
        runs.append(run)
    return runs


def collect_runs(roots) -> list[Run]:
    """Every run folder under the roots (sas.run_folder.RunFolder.find), finished, failed, unfinished or damaged."""
    from sas.run_folder import RunFolder
    return runs_from_records(f.read() for f in RunFolder.find(roots))


def runs_from_wandb(path: str) -> list[Run]:
    """The same records from a W&B project ("entity/project"), through the public API (needs the network)."""
    import wandb
    runs = []
    for r in wandb.Api().runs(path):
        cfg, s = dict(r.config), dict(r.summary)
        choices = cfg.get("group_by") or {}
        run = Run(r.url, "ok" if "best_top1_mean" in s else ("failed" if r.state == "failed" else "incomplete"),
                  _fields(cfg, choices), {k: v for k, v in cfg.items() if k not in (*_NOT_SETTINGS, "group_by")})
        if run.status == "ok":
            run.best = (100 * s["best_top1_mean"], 100 * s["best_top1_std"])
            run.last = (100 * s["last_top1_mean"], 100 * s["last_top1_std"])
        runs.append(run)
    return runs


@dataclass
class TableSpec:
    key: str
    title: str
    corner: str
    rows: list                    # [(label, filter), ...]
    cols: list
    common: dict = field(default_factory=dict)


SAS_DEFAULTS = {"pool_mult": 4, "candidate_ratio": 0.5}


def _ipc_model_rows():
    return [(f"{ipc} {label}", {"ipc": ipc, "model": m}) for ipc in (10, 20, 50) for m, label in MODEL_LABELS.items()]


def _ipc_cols():
    return [(f"IPC {ipc}", {"ipc": ipc}) for ipc in (10, 20, 50)]


TABLES = {
    "table1": TableSpec("table1", "Table 1: ImageWoof, best top-1 (%) by test model", "IPC / model", _ipc_model_rows(), [
        ("Random", {"pool": "Real", "sampler": "none"}), ("K-Center", {"pool": "Real", "sampler": "kcenter_real"}),
        ("IDC", {"pool": "IDC"}), ("DiT", {"pool": "DiT", "sampler": "none"}),
        ("DiT+SAS", {"pool": "DiT", "sampler": "sas", **SAS_DEFAULTS}), ("Minimax", {"pool": "Minimax", "sampler": "none"}),
        ("Minimax+SAS", {"pool": "Minimax", "sampler": "sas", **SAS_DEFAULTS})],
        {"dataset": "imagewoof", "eval_split": "val"}),
    "table2": TableSpec("table2", "Table 2: ImageNette and ImageIDC, ResNetAP-10", "dataset / IPC",
                        [(f"{DATASET_LABELS[d]} {ipc}", {"dataset": d, "ipc": ipc})
                         for d in ("imagenette", "imageidc") for ipc in (10, 20, 50)],
                        [("Random", {"pool": "Real", "sampler": "none"}), ("DiT", {"pool": "DiT", "sampler": "none"}),
                         ("Minimax", {"pool": "Minimax", "sampler": "none"}),
                         ("SAS", {"pool": "Minimax", "sampler": "sas", **SAS_DEFAULTS})],
                        {"model": "resnet_ap10", "eval_split": "val"}),
    "table3": TableSpec("table3", "Table 3: CIFAR-10, ResNetAP-10", "IPC",
                        [(str(ipc), {"ipc": ipc}) for ipc in (10, 20, 50)],
                        [("Random", {"pool": "Real", "sampler": "none"}),
                         ("Diffusion", {"pool": "Diffusion", "sampler": "none"}),
                         ("SAS", {"pool": "Diffusion", "sampler": "sas", **SAS_DEFAULTS})],
                        {"dataset": "cifar10", "model": "resnet_ap10_cifar", "eval_split": "val"}),
    "table4": TableSpec("table4", "Table 4: pool size, ImageWoof, Minimax + SAS, ResNetAP-10", "pool",
                        [(f"{m} x IPC", {"pool_mult": m}) for m in (3, 4, 5)], _ipc_cols(),
                        {"dataset": "imagewoof", "pool": "Minimax", "sampler": "sas", "candidate_ratio": 0.5,
                         "model": "resnet_ap10", "eval_split": "val"}),
    "table5": TableSpec("table5", "Table 5: mixed score vs SAS, ImageWoof, Minimax, ResNetAP-10", "method",
                        [("Mixed (0.05)", {"sampler": "mixed_005"}), ("Mixed (0.10)", {"sampler": "mixed_010"}),
                         ("Mixed (0.20)", {"sampler": "mixed_020"}), ("SAS", {"sampler": "sas", "candidate_ratio": 0.5})],
                        _ipc_cols(), {"dataset": "imagewoof", "pool": "Minimax", "pool_mult": 4,
                                      "model": "resnet_ap10", "eval_split": "val"}),
    "table6": TableSpec("table6", "Table 6: ablations, ImageWoof, Minimax, ResNetAP-10", "enabled scores",
                        [(label, {"sampler": f"ablation_{n}"}) for label, n in
                         (("none", "none"), ("rel", "rel"), ("sep", "sep"), ("div", "div"), ("rel + sep", "rel_sep"),
                          ("rel + sep + div", "full"))],
                        _ipc_cols(), {"dataset": "imagewoof", "pool": "Minimax", "pool_mult": 4,
                                      "model": "resnet_ap10", "eval_split": "val"}),
    "fig5": TableSpec("fig5", "Fig. 5: candidate-set ratio, IPC 50, ImageWoof, Minimax + SAS, ResNetAP-10",
                      "candidate ratio", [(f"{r / 10:.1f}", {"candidate_ratio": r / 10}) for r in range(1, 11)],
                      [("IPC 50", {"ipc": 50})], {"dataset": "imagewoof", "pool": "Minimax", "sampler": "sas",
                                                  "pool_mult": 4, "model": "resnet_ap10", "eval_split": "val"}),
}


def _diff_keys(a, b, prefix="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def build_table(spec: TableSpec, runs: list[Run]) -> dict:
    """{"spec", "cells": {(row, col): Run | None}}; ReportError if a cell's runs disagree in settings."""
    cells = {}
    for rlabel, rflt in spec.rows:
        for clabel, cflt in spec.cols:
            flt = {**spec.common, **rflt, **cflt}
            mine = [r for r in runs if r.matches(flt)]
            for other in mine[1:]:
                diff = _diff_keys(mine[0].settings, other.settings)
                if diff:
                    raise ReportError(f"{spec.key} cell ({rlabel}, {clabel}): runs with mismatched settings "
                                      f"({', '.join(diff[:6])}): {mine[0].path} vs {other.path}")
            ok = [r for r in mine if r.status == "ok"]
            cells[(rlabel, clabel)] = ok[0] if ok else (mine[0] if mine else None)
    return {"spec": spec, "cells": cells}


def _cell_texts(table: dict, bold_open: str, bold_close: str, pm: str) -> list[list[str]]:
    spec, cells, paper = table["spec"], table["cells"], PAPER.get(table["spec"].key, {})
    out = []
    for rlabel, _ in spec.rows:
        ours = {c: cells[(rlabel, c)].best for c, _ in spec.cols
                if cells[(rlabel, c)] is not None and cells[(rlabel, c)].status == "ok"}
        top = max((round(v[0], 1) for v in ours.values()), default=None)
        row = [rlabel]
        for clabel, _ in spec.cols:
            run = cells[(rlabel, clabel)]
            ref = paper.get((rlabel, clabel))
            prov = PROVENANCE.get(spec.key)
            if ref and run is not None and prov is not None and not prov.matches(run.settings):
                ref = None                                     # measured under another protocol: not placed here
            ref_text = f" ({ref[0]:.1f})" if ref else ""
            if run is None:
                text = "missing"
            elif run.status == "damaged":
                text = f"damaged ({run.error.split(': ')[0].removeprefix('damaged ')})"
            elif run.status != "ok":
                text = run.status
            else:
                text = f"{run.best[0]:.1f} {pm} {run.best[1]:.1f}"
                if round(run.best[0], 1) == top:
                    text = f"{bold_open}{text}{bold_close}"
            row.append(text + ref_text)
        out.append(row)
    return out


def render_markdown(table: dict) -> str:
    spec = table["spec"]
    head = [spec.corner] + [c for c, _ in spec.cols]
    lines = [f"### {spec.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in _cell_texts(table, "**", "**", "±")]
    lines += ["", "Best top-1 (%), mean ± std over repeats; the paper's figure in parentheses; bold: best of the row."]
    if spec.key in PROVENANCE:
        lines += ["", f"Figures in parentheses: {PROVENANCE[spec.key].line()}; shown only beside runs evaluated "
                      "under that protocol."]
    return "\n".join(lines) + "\n"


def render_latex(table: dict) -> str:
    from sas.report.latex import BOLD, END, PM, latex_text
    spec = table["spec"]
    head = [spec.corner] + [c for c, _ in spec.cols]
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_text(spec.title)}}}",
             r"\begin{tabular}{l" + "c" * len(spec.cols) + "}", r"\toprule",
             " & ".join(map(latex_text, head)) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_text(c) for c in row) + r" \\" for row in _cell_texts(table, BOLD, END, PM)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
