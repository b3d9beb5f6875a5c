"""A comparison table for whatever runs a folder holds: rows are the settings that vary, columns the samplers.

    entries = collect_entries(["outputs/"])                  # one per (job, sampler), compare samplers included
    table = comparison(entries)
    print(render_markdown(table)); render_latex(table); write_csv(table, "report/comparison.csv")

Rows: every setting that differs between the entries other than the sampler itself (dataset, pool, model,
eval, encoder, IPC, pool_mult, any swept key such as sampler.candidate_ratio). A sampler that has no such
key (random has no candidate_ratio) appears in every row that matches on the others. Columns: one per sampler
choice, each cell the mean +- population std of best and last top-1 over all repeats of its runs, the number
of runs (n), and DD-Ranking's HLR / IOR / DDRS when the runs computed them (ddranking=true). Bold: the
row's best mean best top-1. Only finished runs count; the table lists how many were skipped and why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from sas.evaluation.ddranking import PERCENT_POINTS, SCORES

__all__ = ["Entry", "collect_entries", "entries_from_records", "comparison", "render_markdown", "render_latex",
           "write_csv"]

_LAUNCH = {"name", "paths", "compare", "hydra", "logger", "progress", "overwrite", "job_name", "stop_after",
           "sampler"}
_SAMPLER_NOISE = {"_target_", "name", "choice"}
_GROUPS = ("dataset", "pool", "encoder", "model", "eval")
WILDCARD = "*"
HEADERS = {"best": "best (%)", "last": "last (%)", "hlr": "HLR (pp)", "ior": "IOR (pp)", "ior_pool": "IOR pool (pp)",
           "ddrs": "DDRS", "lrs": "LRS", "n": "n"}


@dataclass
class Entry:
    path: str
    sampler: str                     # the column: the sampler's config choice (sas, random, mixed_005, ...)
    settings: dict                   # flat key -> value (group choices, sampler.<key>, other run-level keys)
    best: list = field(default_factory=list)       # best top-1 per repeat (fractions)
    last: list = field(default_factory=list)
    scores: dict | None = None       # DD-Ranking per-repeat lists (hlr, ior, ddrs)
    quality: dict | None = None      # the selected set's overall quality (sas.evaluation.quality)
    cost: dict | None = None         # seconds: select (with its extra inputs), evaluate; the run's pool, encode


def _flat(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, list) else v
    return out


def entries_from_records(records) -> tuple[list[Entry], list[str]]:
    """(one entry per (finished job, sampler), one line per job left out and why) from run records
    (sas.run_folder.RunRecord)."""
    entries, skipped = [], []
    for rec in records:
        if rec.status != "ok":
            skipped.append(f"{rec.path}: {rec.status}" + (f" ({rec.error[:100]})" if rec.status == "damaged" else ""))
            continue
        cfg, res = rec.config, rec.results
        choices = res.get("choices") or rec.choices or {}
        samplers = res.get("samplers")
        if not isinstance(samplers, dict):
            skipped.append(f"{rec.path}: damaged (results.json: no samplers)")
            continue
        base = {g: choices.get(g) or (cfg.get(g) or {}).get("name") for g in _GROUPS}
        base.update({k: v for k, v in _flat({k: v for k, v in cfg.items() if k not in _LAUNCH and k not in
                                             _GROUPS}).items()})
        for name, s in samplers.items():
            sampler_cfg = {k: v for k, v in (s.get("sampler") or {}).items() if k not in _SAMPLER_NOISE}
            settings = {**base, **{f"sampler.{k}": v for k, v in _flat(sampler_cfg).items()}}
            reps = (s.get("evaluation") or {}).get("repeats") or []
            try:
                best, last = [float(r["best_top1"]) for r in reps], [float(r["last_top1"]) for r in reps]
            except (KeyError, TypeError, ValueError):
                skipped.append(f"{rec.path}: damaged (results.json: sampler {name}'s repeats)")
                continue
            scores = s.get("ddranking")
            entries.append(Entry(rec.path, name, settings, best, last,
                                 {k: scores[k] for k in SCORES if k in scores} if scores else None,
                                 (s.get("quality") or {}).get("overall"), _seconds(s.get("cost"), res.get("cost"))))
    return entries, skipped


def _seconds(mine: dict | None, run: dict | None) -> dict | None:
    """Wall seconds a sampler's selection cost (its extra inputs included) and its evaluation, beside the run's
    pool and encoding stages (sas.costs records)."""
    if not mine:
        return None
    wall = lambda c, k: (c or {}).get(k, {}).get("wall_s") or 0.0   # noqa: E731
    return {"select_s": wall(mine, "extras") + wall(mine, "select"), "evaluate_s": wall(mine, "evaluate"),
            "pool_s": wall(run, "pool"), "encode_s": wall(run, "encode")}


QUALITY = ("fd", "precision", "recall", "density", "coverage")      # sas.evaluation.quality, overall
COSTS = ("select_s", "evaluate_s", "pool_s", "encode_s")
SIDE_HEADERS = {"fd": "FD", "precision": "precision", "recall": "recall", "density": "density",
                "coverage": "coverage", "select_s": "select s", "evaluate_s": "evaluate s", "pool_s": "pool s",
                "encode_s": "encode s"}


def collect_entries(roots) -> tuple[list[Entry], list[str]]:
    """entries_from_records of every run folder under the roots (sas.run_folder.RunFolder.find)."""
    from sas.run_folder import RunFolder
    return entries_from_records(f.read() for f in RunFolder.find(roots))


def _row_keys(entries: list[Entry]) -> list[str]:
    """Settings that vary: a sampler's own keys only when they vary among that sampler's entries."""
    keys = set()
    every = sorted({k for e in entries for k in e.settings})
    for k in every:
        if k.startswith("sampler.") and k not in ("sampler.ipc", "sampler.pool_mult"):
            for s in {e.sampler for e in entries}:
                vals = {json.dumps(e.settings.get(k), default=str) for e in entries if e.sampler == s}
                if len(vals) > 1:
                    keys.add(k)
        elif len({json.dumps(e.settings.get(k), default=str) for e in entries}) > 1:
            keys.add(k)
    order = [*_GROUPS, "sampler.ipc", "sampler.pool_mult"]
    return [k for k in order if k in keys] + sorted(keys - set(order))


def _stats(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def comparison(entries: list[Entry], skipped: list[str] | None = None) -> dict:
    """{"keys", "rows": [row values], "samplers", "cells": {(row, sampler): stats}, "skipped"}."""
    keys = _row_keys(entries)

    def value(e, k):
        v = e.settings.get(k, WILDCARD if k.startswith("sampler.") else None)
        return json.dumps(v, default=str) if isinstance(v, (list, dict)) else v

    rows = sorted({tuple(value(e, k) for k in keys) for e in entries}, key=lambda r: [str(x) for x in r])
    concrete = [r for r in rows if WILDCARD not in r] or rows
    samplers = list(dict.fromkeys(e.sampler for e in entries))
    cells = {}
    for row in concrete:
        for s in samplers:
            mine = [e for e in entries if e.sampler == s and all(
                value(e, k) in (v, WILDCARD) for k, v in zip(keys, row))]
            if not mine:
                continue
            cell = {"n": len({e.path for e in mine}), "best": _stats([x for e in mine for x in e.best]),
                    "last": _stats([x for e in mine for x in e.last])}
            scored = [e for e in mine if e.scores]
            for k in SCORES:
                cell[k] = _stats([x for e in scored for x in e.scores.get(k, [])]) if scored else None
            for k in QUALITY:                                # one figure per run: their mean and std over runs
                cell[k] = _stats([e.quality[k] for e in mine if e.quality and e.quality.get(k) is not None])
            for k in COSTS:
                cell[k] = _stats([e.cost[k] for e in mine if e.cost])
            cells[(row, s)] = cell
    return {"keys": keys, "rows": concrete, "samplers": samplers, "cells": cells, "skipped": skipped or [],
            "ddranking": any(e.scores for e in entries), "quality": any(e.quality for e in entries),
            "cost": any(e.cost for e in entries)}


def _pct(st, pm: str) -> str:
    return "" if st is None else f"{100 * st[0]:.1f} {pm} {100 * st[1]:.1f}"


def _metrics(table: dict) -> list[str]:
    return ["best", "last", *SCORES, "n"] if table["ddranking"] else ["best", "last", "n"]


def _cell(table: dict, row, s, pm: str, bold: tuple[str, str]) -> list[str]:
    c = table["cells"].get((row, s))
    if c is None:
        return ["—"] * len(_metrics(table))
    best = max((table["cells"][(row, t)]["best"][0] for t in table["samplers"]
                if (row, t) in table["cells"] and table["cells"][(row, t)]["best"]), default=None)
    out = []
    for m in _metrics(table):
        if m == "n":
            out.append(str(c["n"]))
        elif m in ("best", "last") or m in PERCENT_POINTS:
            out.append(_pct(c[m], pm))
        else:
            out.append("" if c[m] is None else f"{c[m][0]:.3f} {pm} {c[m][1]:.3f}")
    if c["best"] and round(c["best"][0], 4) == round(best, 4) and len(table["samplers"]) > 1:
        out[0] = f"{bold[0]}{out[0]}{bold[1]}"
    return out


def _header(table: dict) -> tuple[list[str], list[str]]:
    keys = [k.removeprefix("sampler.") for k in table["keys"]] or ["runs"]
    return keys, [f"{s} {HEADERS[m]}" for s in table["samplers"] for m in _metrics(table)]


def _row_label(table: dict, row) -> list[str]:
    return [str(v) for v in row] if table["keys"] else ["all"]


def render_markdown(table: dict) -> str:
    keys, cols = _header(table)
    lines = ["### Comparison of every run found", "", "| " + " | ".join(keys + cols) + " |",
             "|" + "---|" * (len(keys) + len(cols))]
    for row in table["rows"]:
        cells = [x for s in table["samplers"] for x in _cell(table, row, s, "±", ("**", "**"))]
        lines.append("| " + " | ".join(_row_label(table, row) + cells) + " |")
    lines += ["", "Top-1 (%) on the real evaluation split, mean ± std over all repeats of the cell's runs (n runs); "
              "bold: the row's best."
              + (" DD-Ranking (sas.evaluation.ddranking): HLR = hard-label recovery (percentage points: real data's "
                 "hard-label top-1 minus the set's; lower is better), IOR = improvement over IPC random real train "
                 "images per class (pp, a new draw per repeat, as the package), IOR pool = over a random subset of "
                 "the same pool (pp), DDRS = the paper's score on fractions, LRS = the package's label-robust "
                 "score on percentages (both w = 0.5)." if table["ddranking"] else "")]
    lines += _side_table(table)
    if table["skipped"]:
        lines += ["", "Left out: " + "; ".join(table["skipped"][:20])]
    return "\n".join(lines) + "\n"


def _side_table(table: dict) -> list[str]:
    """Markdown lines of the set-quality and cost table (one line per row and sampler), when runs recorded them."""
    cols = [*(QUALITY if table.get("quality") else ()), *(COSTS if table.get("cost") else ())]
    if not cols:
        return []
    keys, _ = _header(table)
    lines = ["", "### Set quality and cost", "", "| " + " | ".join([*keys, "sampler", *(SIDE_HEADERS[c] for c in cols)])
             + " |", "|" + "---|" * (len(keys) + 1 + len(cols))]
    for row in table["rows"]:
        for s in table["samplers"]:
            c = table["cells"].get((row, s))
            if c is None:
                continue
            vals = ["" if c.get(k) is None else (f"{c[k][0]:.3f}" if k in QUALITY else f"{c[k][0]:.2f}")
                    for k in cols]
            lines.append("| " + " | ".join([*_row_label(table, row), s, *vals]) + " |")
    lines += ["", "The selected set against the real train split's embeddings (the run's encoder; "
              "sas.evaluation.quality): Fréchet distance (lower is closer) and precision / recall / density / "
              "coverage at the run's k, mean over runs. Seconds (wall, mean over runs; sas.costs): selecting "
              "(with the inputs the selector needs), evaluating (all repeats), and the run's pool generation and "
              "encoding, which every sampler of a run shares."]
    return lines


def render_latex(table: dict) -> str:
    from sas.report.latex import BOLD, END, PM, latex_text
    keys, cols = _header(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\caption{Comparison of every run found (top-1, \%)}",
             r"\begin{tabular}{" + "l" * len(keys) + "c" * len(cols) + "}", r"\toprule",
             " & ".join(map(latex_text, keys + cols)) + r" \\", r"\midrule"]
    for row in table["rows"]:
        cells = [x for s in table["samplers"] for x in _cell(table, row, s, PM, (BOLD, END))]
        lines.append(" & ".join(latex_text(c) for c in _row_label(table, row) + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_csv(table: dict, path) -> None:
    """Long format, one line per (row, sampler): the row's settings, then n and every statistic (fractions)."""
    import csv
    import io

    from sas.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    stats = ["best", "last", *SCORES, *QUALITY, *COSTS]
    w.writerow([*table["keys"], "sampler", "n_runs", *[f"{s}_{m}" for s in stats for m in ("mean", "std")]])
    for row in table["rows"]:
        for s in table["samplers"]:
            c = table["cells"].get((row, s))
            if c is None:
                continue
            vals = [x for k in stats for x in (c.get(k) or ("", ""))]
            w.writerow([*row, s, c["n"], *vals])
    atomic_write_text(Path(path), buf.getvalue())
