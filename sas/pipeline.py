"""The distill job: pool -> embeddings -> selection -> distilled set -> evaluation, logged to W&B.

    from sas.pipeline import run
    best = run(cfg)          # cfg: conf/distill.yaml composed; returns the main sampler's mean best top-1

The only place that knows the order of the stages. Each stage takes the
previous one's artifact and resumes on its own: pool images and embeddings
live in the shared cache (content-addressed), the distilled set is rewritten
only when incomplete, and finished evaluation repeats are read back from
<run>/eval_repeats.jsonl. A run killed anywhere and started again with the same
command (same output folder) finishes with the same results; a folder that
holds results of another config is never overwritten unless overwrite=true.

Run folder:
    config.yaml                  the resolved config (written first)
    distilled/<class>/<file>     the selected images; distilled/manifest.jsonl (scores, flags)
    compare/<name>/...           the same for each comparison sampler (demo)
    eval_repeats.jsonl           finished evaluation repeats
    results.json                 written last
    wandb/                       the W&B (offline) run
"""

from __future__ import annotations

import json
import math
import logging
import shutil
import time
from pathlib import Path

from sas.io import append_line, atomic_write_text, read_jsonl
from sas.run_folder import FAILED, REPEATS, RESULTS, FolderBusy, FolderTaken, RunFolder

log = logging.getLogger(__name__)

__all__ = ["run", "record_failure", "RESULTS", "FAILED"]

IGNORED_KEYS = ("overwrite", "logger", "progress", "job_name")  # do not change what a run computes


def _comparable(cfg) -> dict:
    from omegaconf import OmegaConf
    c = OmegaConf.to_container(cfg, resolve=True)
    for k in IGNORED_KEYS:
        c.pop(k, None)
    c.get("paths", {}).pop("output_dir", None)
    return c


def _pool_stage(plan) -> tuple[list[str], list[int]]:
    """The pool's files and labels, whatever its kind (generated, trained first, folder, real): one interface."""
    from sas.pools.base import PoolContext
    return plan.pool.paths(plan.n_per_class, PoolContext(plan.data.table, plan.data, plan.cache_dir,
                                                         plan.pool_seed, plan.progress, plan.shard,
                                                         plan.num_shards))


def _needs_real_train(encoder) -> bool:
    """Visual prototypes and the domain encoder read the real train split."""
    from sas.encoders.domain import DomainEncoder
    return isinstance(encoder, DomainEncoder) or getattr(encoder, "prototypes", "text") == "visual"


def _encode_stage(plan, files, table, real_train):
    import torch

    from sas.encoders.cache import embeddings_path, encode_pool, prototypes_for
    from sas.encoders.domain import DomainEncoder
    from sas.shards import Shard, rank_world

    enc = plan.encoder
    if isinstance(enc, DomainEncoder):
        enc.fit(real_train(), plan.cache_dir, progress=plan.progress)
    key = {"pool": [str(Path(files[0]).parent.parent)], "encoder": enc.key_config()}
    feats = encode_pool(enc, files, key, plan.cache_dir, progress=plan.progress and rank_world()[0] == 0,
                        shard=Shard.current(plan.shard, plan.num_shards))               # (N, d)
    protos = prototypes_for(enc, table, real_train)                                     # (C, d)
    protos = None if protos is None else protos.to(torch.float32)
    return feats.to(torch.float32), protos, embeddings_path(key, plan.cache_dir)


def _class_ranks(labels: list[int]) -> list[int]:
    """Each pool image's position among the images of its class (pools list each class in order)."""
    seen: dict[int, int] = {}
    ranks = []
    for y in labels:
        ranks.append(seen.get(y, 0))
        seen[y] = ranks[-1] + 1
    return ranks


def _written(dist: Path, idx: list[int]) -> bool:
    """The distilled set holds exactly these pool indices, and every file its manifest names."""
    from sas.data.distilled import MANIFEST, read_manifest
    from sas.data.images import DataError
    if not (dist / MANIFEST).is_file():
        return False
    try:
        rows = read_manifest(dist)
    except DataError:
        return False
    return [r.get("pool_index") for r in rows] == idx and all((dist / r["file"]).is_file() for r in rows)


def _lines(path: Path) -> int:
    """Complete JSON lines in a file written whole (0 when missing or damaged)."""
    try:
        return sum(1 for line in path.read_text().splitlines() if json.loads(line) is not None)
    except (OSError, ValueError):
        return 0


def _write_selection(sel_dir: Path, name: str, rec: dict, idx: list[int], files, labels, table) -> None:
    from sas.data.distilled import write_distilled

    rows = [{"pool_index": i, "pool_file": files[i], "sampler": name,
             **{k: rec[k][i] for k in rec}} for i in idx]
    dist = sel_dir / "distilled"
    if not _written(dist, idx):
        if dist.exists():
            shutil.rmtree(dist)
        write_distilled(dist, [files[i] for i in idx], [labels[i] for i in idx], table, rows)
    scores = sel_dir / "pool_scores.jsonl"
    if _lines(scores) == len(files):
        return  # both artifacts of this stage written by an earlier (killed) run of this config
    # the whole pool's record, for plots (t-SNE, margin grids)
    atomic_write_text(scores, "\n".join(json.dumps(
        {"pool_index": i, "file": files[i], "label": labels[i], **{k: rec[k][i] for k in rec}})
        for i in range(len(files))) + "\n")


def _evaluate_stage(plan, sel_dir: Path, table, context, tracker, protocol=None, which=None, prefix: str = "") -> dict:
    """Evaluate the distilled set under a protocol (the run's by default; `which` repeats, all by default);
    finished repeats are read back. `prefix` keys the logged curves by what was trained."""
    from sas.cache import config_key
    from sas.data.distilled import read_distilled
    from sas.evaluation.protocol import NO_RESULT_FIELDS, evaluate

    protocol = protocol or plan.protocol
    distilled = read_distilled(sel_dir / "distilled", table, protocol.image_size)
    model = plan.model
    settings = plan.eval_config if protocol is plan.protocol else protocol.config()
    settings = {k: v for k, v in settings.items() if k not in NO_RESULT_FIELDS}   # a bar changes no result
    key = config_key({"model": model, "protocol": settings,
                      "manifest": (sel_dir / "distilled" / "manifest.jsonl").read_text()})
    progress = sel_dir / REPEATS
    done = [r for r in read_jsonl(progress) if r.get("key") == key]    # a partial last line is dropped

    def record(rec):
        append_line(progress, json.dumps({**rec, "key": key}))

    ipc = next(iter(plan.samplers.values())).ipc
    return evaluate(distilled, context.real_val(), model, protocol, ipc=ipc,
                    logger=tracker.lightning_logger(protocol.repeats), completed=done, on_repeat=record,
                    context=context, which=which, metric_prefix=prefix)


def record_failure(out, err: BaseException, cfg=None, choices: dict | None = None) -> None:
    """Write <run>/failed.json (error and traceback) so sweeps and the report show the job as failed.

    A job that failed before its config.yaml was written (bad values) gets it here, so the report can
    place it in its cell.
    """
    import traceback

    import yaml
    out = Path(out)
    if isinstance(err, (FolderTaken, FolderBusy)) or (cfg is not None and RunFolder(out, _comparable(cfg)).foreign()):
        log.error("job refused: %s (nothing written to %s)", err, out)   # the folder is another job's
        return
    if cfg is not None and not (out / "config.yaml").is_file():
        try:
            atomic_write_text(out / "config.yaml", yaml.safe_dump(json.loads(json.dumps(_comparable(cfg))),
                                                                  sort_keys=False))
            atomic_write_text(out / "choices.json", json.dumps(choices or {}, indent=1))
        except Exception:  # an unresolvable config: failed.json alone still records the failure
            pass
    atomic_write_text(Path(out) / FAILED, json.dumps({
        "error": f"{type(err).__name__}: {err}",
        "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__))[-20000:]}, indent=1))
    log.error("job failed: %s (recorded in %s)", err, Path(out) / FAILED)


def format_table(results: dict, scores: dict | None = None) -> str:
    """Best / last top-1 per sampler (mean +- std over repeats), and DD-Ranking's HLR / IOR / IOR_pool (percentage
    points), DDRS (on fractions) and LRS (the package's, on percentages) when given."""
    scores = scores or {}
    head = f"{'sampler':<16} {'best top-1 (%)':>16} {'last top-1 (%)':>16}"
    head += (f" {'HLR (pp)':>14} {'IOR (pp)':>14} {'IOR pool (pp)':>14} {'DDRS':>14} {'LRS (package)':>16}"
             if scores else "")
    lines = [head]
    for name, r in results.items():
        line = (f"{name:<16} {100 * r['best_top1_mean']:>9.1f} +- {100 * r['best_top1_std']:<4.1f}"
                f" {100 * r['last_top1_mean']:>9.1f} +- {100 * r['last_top1_std']:<4.1f}")
        s = scores.get(name)
        if s:
            line += "".join(f" {100 * s[f'{k}_mean']:>7.1f} +- {100 * s[f'{k}_std']:<4.1f}"
                            for k in ("hlr", "ior", "ior_pool"))
            line += f" {s['ddrs_mean']:>7.3f} +- {s['ddrs_std']:<5.3f} {s['lrs_mean']:>8.3f} +- {s['lrs_std']:<5.3f}"
        lines.append(line)
    return "\n".join(lines)


def run(cfg, choices: dict | None = None) -> float:
    """Run (or resume, or read back) one distill job; returns the main sampler's mean best top-1."""
    from sas.config import build_plan

    t_start = time.time()
    plan = build_plan(cfg, (choices or {}).get("sampler"))     # every value checked; nothing loaded yet
    if plan.stop_after is not None:
        return fill_cache(cfg, plan)
    try:
        out = Path(cfg.paths.output_dir)                       # Hydra's run folder under distill.py
    except Exception:  # the ${hydra:...} default cannot resolve outside a Hydra app
        from sas.config import ConfigError
        raise ConfigError("paths.output_dir is not set: give it when calling sas.pipeline.run from Python "
                          "(distill.py uses Hydra's run folder)") from None
    folder = RunFolder(out, _comparable(cfg))
    if folder.foreign() and not cfg.overwrite:                # refused before anything is written there
        folder.claim(overwrite=False)
    with folder.hold():                                        # one job per folder at a time
        finished = folder.claim(bool(cfg.overwrite))
        if finished is not None:
            print(f"already finished with this config: {out / RESULTS}")
            print(format_table({k: v["evaluation"] for k, v in finished["samplers"].items()}))
            return finished["best_top1_mean"]
        choices = choices or {}
        folder.start(choices)                                  # config.yaml, choices.json (the report's cell keys)
        return _run_stages(cfg, plan, folder, choices, t_start)


def fill_cache(cfg, plan) -> float:
    """A cache-filling job (stop_after=pool|encode; every job of a pool.shard sweep, every rank under
    torchrun / srun): draws (and encodes) its shard into the shared cache, touches no run folder, returns nan.
    The job that finds the pool (or the embeddings) complete says so; a later whole run reads them."""
    from sas.encoders.cache import EncodingIncomplete
    from sas.pools.base import PoolIncomplete
    from sas.shards import Shard, rank_world

    shard = Shard.current(plan.shard, plan.num_shards)
    try:
        files, _ = _pool_stage(plan)
        done = f"pool complete: {len(files)} images"
        if plan.stop_after == "encode":
            splits = RealSplits(plan.data, cfg)
            _, _, emb_file = _encode_stage(plan, files, plan.data.table, splits.train)
            done += f"; embeddings complete: {emb_file}"
    except (PoolIncomplete, EncodingIncomplete) as err:
        done = str(err)
    if rank_world()[0] == 0:
        print(f"{shard} done. {done}")
    return math.nan


class RealSplits:
    """The real splits a run reads, each decoded once on first use (every file checked then), or streamed
    from its files when larger than dataset.resident_max_gb."""

    def __init__(self, data, cfg):
        self.data, self.cfg, self._cache = data, cfg, {}

    def get(self, split: str):
        if split not in self._cache:
            if split == "holdout":  # tuning never sees the test split: the first train files per class
                self._cache[split] = self.data.split("train", per_class=self.cfg.get("holdout_per_class"))
            else:
                per_class = self.cfg.get("prototype_per_class") if split == "train" else None
                self._cache[split] = self.data.split(split, per_class=per_class)
        return self._cache[split]

    def train(self):
        return self.get("train")


def _select_and_write(plan, name: str, sampler, pool, sel_dir: Path):
    """One sampler on the encoded pool: select, write the distilled set -> (record, indices, files, labels,
    features) of the pool part it chose from."""
    import torch

    files, labels, feats, protos, rank = pool
    n = math.inf if sampler.pool_mult is None else sampler.pool_mult * sampler.ipc
    mine = [i for i in range(len(files)) if rank[i] < n]                   # the first n of each class
    sub_feats = feats[mine]                                                 # (n_pool, d)
    sel = sampler(sub_feats, torch.tensor([labels[i] for i in mine]), protos)
    sub_files, sub_labels = [files[i] for i in mine], [labels[i] for i in mine]
    rec = {k: v.tolist() for k, v in sel.record().items()}                # per image, as lists
    idx = sel.indices.tolist()
    _write_selection(sel_dir, name, rec, idx, sub_files, sub_labels, plan.data.table)
    return rec, idx, sub_files, sub_labels, sub_feats


def _select_write_evaluate(plan, name: str, sampler, pool, sel_dir: Path, context, tracker, run_dir: Path) -> dict:
    """One sampler on the encoded pool: select, write the distilled set, log it, evaluate it (and score it
    with DD-Ranking when asked)."""
    table = plan.data.table
    rec, idx, sub_files, sub_labels, sub_feats = _select_and_write(plan, name, sampler, pool, sel_dir)
    tracker.log_selection(name, rec, idx, sub_files, sub_labels, table)
    if plan.pictures:                                      # score histograms, embedding map, selected grid
        from sas.report.pictures import selection_pictures
        tracker.log_pictures(name, selection_pictures(sel_dir / "figures", rec, idx, sub_files, sub_labels,
                                                      sub_feats.numpy(), table, plan.map_method))
    result = _evaluate_stage(plan, sel_dir, table, context, tracker)
    out = {"sampler": {**sampler.config(), "choice": name}, "distilled": str(sel_dir / "distilled"),
           "evaluation": result}
    if plan.ddranking:
        out["ddranking"] = _ddranking_stage(plan, name, sampler, pool, sel_dir, context, tracker, result, run_dir)
    tracker.log_results("main" if name == plan.main else name, result, out.get("ddranking"))
    return out


def _ddranking_stage(plan, name: str, sampler, pool, sel_dir: Path, context, tracker, result: dict,
                     run_dir: Path) -> dict:
    """DD-Ranking's scores of one distilled set (sas.evaluation.ddranking), as the package computes them: its
    hard-label runs (plan.ddranking_hard, a learning-rate search), one random subset of the real train split
    per repeat (IPC per class, a new draw each) and a random subset of the same pool, both under the run's
    protocol with the package's learning-rate search, and acc(real, hard) (trained here once and cached, or
    the package's cached figure)."""
    import torch

    from sas.evaluation.ddranking import cached_full_accuracy, ddranking_scores, model_name
    from sas.evaluation.softlabel import train_on_real
    from sas.pools.base import PoolContext
    from sas.pools.real import RealPool
    from sas.sampling import Random

    table, protocol = plan.data.table, plan.protocol
    best = lambda r: [x["best_top1"] for x in r["repeats"]]                  # noqa: E731
    syn_hard = _evaluate_stage(plan, sel_dir, table, context, tracker, plan.ddranking_hard,
                               prefix=f"{name}/ddranking_hard/")
    searched = protocol.replaced(lr_search=plan.ddranking_lr_search) if plan.ddranking_lr_search else protocol
    real_files, real_labels = RealPool().paths(None, PoolContext(table, plan.data, plan.cache_dir))
    real = (real_files, real_labels, torch.ones(len(real_files), 1), None, _class_ranks(real_labels))
    random_real, real_dirs = [], []
    for r in range(protocol.repeats):                                 # a new draw per repeat, seeded from it
        rdir = run_dir / "ddranking" / f"real-random-ipc{sampler.ipc}" / f"repeat{r}"
        _select_and_write(plan, "random", Random(ipc=sampler.ipc, pool_mult=None, seed=plan.seed * 1000003 + r),
                          real, rdir)
        random_real += best(_evaluate_stage(plan, rdir, table, context, tracker, searched, which=[r],
                                            prefix=f"{name}/ddranking_random_real/"))
        real_dirs.append(str(rdir / "distilled"))
    pool_dir = run_dir / "ddranking" / f"random-ipc{sampler.ipc}-mult{sampler.pool_mult}"
    _select_and_write(plan, "random", Random(ipc=sampler.ipc, pool_mult=sampler.pool_mult, seed=plan.seed), pool,
                      pool_dir)
    random_pool = _evaluate_stage(plan, pool_dir, table, context, tracker, searched,
                                  prefix=f"{name}/ddranking_random_pool/")
    if plan.ddranking_full == "cached":
        full, source = cached_full_accuracy(table.name, model_name(plan.model))
    else:
        _, res = train_on_real(plan.model, protocol.hard_protocol(), context)
        full, source = res["best_top1"], "trained here on the real train split (the run's hard-label protocol)"
    return {**ddranking_scores(full, best(syn_hard), best(result), random_real, best(random_pool),
                               plan.ddranking_weight),
            "full_source": source, "random_real_distilled": real_dirs,
            "random_pool_distilled": str(pool_dir / "distilled")}


def _summary(cfg, plan, results: dict, n_files: int, emb_file, choices: dict, t_start: float) -> dict:
    head, main = results[plan.main]["evaluation"], plan.samplers[plan.main]
    return {"name": cfg.name, "dataset": plan.data.table.name, "ipc": main.ipc, "pool_label": cfg.pool.get("label"),
            "eval_split": cfg.get("eval_split", "val"), "embeddings": str(emb_file), "pool_files": n_files,
            "pool_mult": main.pool_mult, "sampler": plan.main, "choices": choices,
            "model": plan.model,
            **{k: head[k] for k in ("best_top1_mean", "best_top1_std", "last_top1_mean", "last_top1_std")},
            "samplers": results, "seconds": round(time.time() - t_start, 1)}


def _run_stages(cfg, plan, folder: RunFolder, choices: dict, t_start: float) -> float:
    """The stages in order, one line each."""
    from hydra.utils import instantiate

    from sas.evaluation.protocol import EvalContext

    tracker = instantiate(cfg.logger)(cfg, folder.path, choices)          # conf/logger: sas.tracking.Tracker
    try:
        splits = RealSplits(plan.data, cfg)
        context = EvalContext(splits.train, lambda: splits.get(cfg.get("eval_split", "val")), plan.cache_dir,
                              plan.data_key)                                  # what evaluation may read
        context.real_val()                                                    # real splits decoded (checked)
        if _needs_real_train(plan.encoder):                                   # before the first expensive stage
            splits.train()
        files, labels = _pool_stage(plan)
        tracker.link_generator(plan.pool)                                     # the train.py run, when there is one
        feats, protos, emb_file = _encode_stage(plan, files, plan.data.table, splits.train)
        pool = (files, labels, feats, protos, _class_ranks(labels))
        results = {name: _select_write_evaluate(plan, name, sampler, pool,
                                                folder.path if name == plan.main else folder.path / "compare" / name,
                                                context, tracker, folder.path)
                   for name, sampler in plan.samplers.items()}
        summary = _summary(cfg, plan, results, len(files), emb_file, choices, t_start)
        folder.finish(summary)
    finally:
        tracker.finish()
    print(format_table({k: v["evaluation"] for k, v in results.items()},
                       {k: v["ddranking"] for k, v in results.items() if "ddranking" in v}))
    print(f"outputs: {folder.path}  (results.json, distilled/, config.yaml)")
    return summary["best_top1_mean"]

