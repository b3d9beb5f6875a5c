"""The distill job: pool -> embeddings -> selection -> distilled set -> evaluation, logged to W&B.

    from sas.pipeline import run
    best = run(cfg, choices)   # cfg: conf/distill.yaml composed; returns the main sampler's mean best top-1
    best = run_plan(plan)      # the same from a Plan (sas.config.build_plan: the last reader of the config)

The only place that knows the order of the stages; each stage is one call, takes the previous stage's object
(sas.artifacts) and returns its own:

    pool = list_pool(...)                 Pool            the pool's images (drawn where missing: sas.pools)
    encoded = encode_stage(...)           EncodedPool     embeddings and prototypes (sas.encoders.cache)
    picked = encoded.first(n).select()    PoolSelection   one sampler's choice (sas.sampling)
    distilled = folder.write(picked)      DistilledSet    the images and manifest (sas.run_folder)
    evaluation = evaluate_set(...)        Evaluation      trained on, repeat by repeat (sas.evaluation)

Each resumes on its own: pool images and embeddings live in the shared cache (content-addressed), the
distilled set is rewritten only when it does not hold exactly the selection, and finished evaluation repeats
are read back. A run killed anywhere and started again with the same command (same output folder) finishes
with the same results; a folder that holds results of another config is never overwritten unless
overwrite=true. The run folder's files are sas.run_folder's.
"""

from __future__ import annotations

import logging
import math
import time

from sas.config import ConfigError, Plan, build_plan
from sas.run_folder import RunFolder

log = logging.getLogger(__name__)

__all__ = ["run", "run_plan", "fill_cache"]


def run(cfg, choices: dict | None = None) -> float:
    """Check the config (build_plan), then run, resume or read back the job -> the main sampler's best top-1."""
    return run_plan(build_plan(cfg, choices))


def run_plan(plan: Plan) -> float:
    if plan.stop_after is not None:
        if plan.output_dir is not None:
            RunFolder(plan.output_dir).clear_records()        # an earlier failed attempt's records
        return fill_cache(plan)
    if plan.output_dir is None:
        raise ConfigError("paths.output_dir is not set: give it when calling sas.pipeline.run from Python "
                          "(distill.py uses Hydra's run folder)")
    t_start = time.time()
    folder = RunFolder(plan.output_dir, plan.config)
    if folder.foreign() and not plan.overwrite:                # refused before anything is written there
        folder.claim(overwrite=False)
    with folder.hold():                                        # one job per folder at a time
        finished = folder.claim(plan.overwrite)
        if finished is not None:
            from sas.console import results_table
            print(f"already finished with this config: {folder.path}")
            print(results_table({k: v["evaluation"] for k, v in finished["samplers"].items()}))
            return finished["best_top1_mean"]
        folder.start(plan.choices, plan.launch)                # .hydra/, config.yaml, choices.json (the report's keys)
        return _run_stages(plan, folder, t_start)


def _pool_context(plan: Plan):
    from sas.pools.base import PoolContext
    return PoolContext(plan.data.table, plan.data, plan.cache_dir, plan.pool_seed, plan.progress, plan.shard,
                       plan.num_shards)


def _eval_context(plan: Plan):
    """The real splits (read on first use) and the shared cache, as the encode and evaluate stages see them."""
    from sas.data.real import RealSplits
    from sas.evaluation.protocol import EvalContext
    splits = RealSplits(plan.data, plan.prototype_per_class, plan.holdout_per_class)
    return EvalContext(splits.train, lambda: splits.get(plan.eval_split), plan.cache_dir, plan.data_key)


def _shard(plan: Plan):
    from sas.shards import Shard
    return Shard.current(plan.shard, plan.num_shards)


def fill_cache(plan: Plan) -> float:
    """A cache-filling job (stop_after=pool|encode; every job of a pool.shard sweep, every rank under
    torchrun / srun): draws (and encodes) its shard into the shared cache, touches no run folder, returns nan.
    The job that finds the pool (or the embeddings) complete says so; a later whole run reads them."""
    from sas.encoders.cache import EncodingIncomplete, encode_stage
    from sas.pools.base import PoolIncomplete, list_pool
    from sas.shards import rank_world

    shard = _shard(plan)
    try:
        pool = list_pool(plan.pool, plan.n_per_class, _pool_context(plan))
        done = f"pool complete: {len(pool)} images"
        if plan.stop_after == "encode":
            encoded = encode_stage(plan.encoder, pool, _eval_context(plan), plan.progress, shard)
            done += f"; embeddings complete: {encoded.path}"
    except (PoolIncomplete, EncodingIncomplete) as err:
        done = str(err)
    if rank_world()[0] == 0:
        print(f"{shard} done. {done}")
    return math.nan


def _run_stages(plan: Plan, folder: RunFolder, t_start: float) -> float:
    """The stages in order, one line each."""
    from sas.console import results_table
    from sas.costs import measured
    from sas.data.stream import check_streamed
    from sas.encoders.cache import encode_stage, needs_real_train, real_embeddings
    from sas.pools.base import list_pool

    tracker = plan.tracker(plan.wandb_config, folder.path, folder.wandb_id, plan.group_by, plan.name, plan.job_name)
    try:
        context = _eval_context(plan)
        check_streamed(context.real_val(), plan.cache_dir, plan.progress)  # real splits decoded or checked ...
        if needs_real_train(plan.encoder):                                  # ... before the first expensive stage
            check_streamed(context.real_train(), plan.cache_dir, plan.progress)
        costs: dict = {}                                                  # per stage (sas.costs)
        with measured(costs, "pool"):
            pool = list_pool(plan.pool, plan.n_per_class, _pool_context(plan))
        tracker.link_generator(plan.pool)                                 # the train.py run, when there is one
        with measured(costs, "encode"):
            encoded = encode_stage(plan.encoder, pool, context, plan.progress, _shard(plan))
        real, pool_quality = None, None
        if plan.quality:                                                  # the pool against the real train split
            with measured(costs, "quality"):
                real = real_embeddings(plan.encoder, context.real_train(), plan.cache_dir, plan.data_key,
                                       plan.quality_real_per_class)
                pool_quality = _quality(plan, real, encoded, range(len(encoded.pool)))
        memo: dict = {}                                          # inputs several samplers share (extras)
        results = {name: _sampler_stages(plan, name, sampler, encoded, folder, context, tracker, memo, real)
                   for name, sampler in plan.samplers.items()}
        summary = {**_summary(plan, results, encoded, t_start), "pool_quality": pool_quality, "cost": costs}
        tracker.log_quality("pool", pool_quality, costs)
        folder.finish(summary)
    finally:
        tracker.finish()
    print(results_table({k: v["evaluation"] for k, v in results.items()},
                        {k: v["ddranking"] for k, v in results.items() if "ddranking" in v}))
    print(f"outputs: {folder.path}  (results.json, distilled/, config.yaml)")
    return summary["best_top1_mean"]


def _sampler_stages(plan: Plan, name: str, sampler, encoded, folder: RunFolder, context, tracker, memo,
                    real) -> dict:
    """One sampler on the encoded pool: select, write, log, draw, evaluate (and score with DD-Ranking), each
    stage's cost measured, the selected set's quality against the real split when `real` is given."""
    from sas.costs import measured
    from sas.evaluation.protocol import evaluate_set

    costs: dict = {}
    n = None if sampler.pool_mult is None else sampler.pool_mult * sampler.ipc
    pool = encoded.first(n)
    extras = None
    if sampler.needs:                                    # e.g. real centroids, classifier difficulties
        from sas.encoders.extras import extra_inputs
        with measured(costs, "extras"):
            extras = extra_inputs(sampler, pool, context, plan.encoder, plan.model, plan.protocol, plan.progress,
                                  memo)
    with measured(costs, "select"):
        picked = pool.select(name, sampler, extras)                                  # PoolSelection
    sel_dir = folder.selection_dir(name, main=name == plan.main)
    with measured(costs, "write"):
        distilled = folder.write(picked, sel_dir)                                    # DistilledSet
    tracker.log_selection(picked)
    if plan.pictures:                                      # score histograms, embedding map, selected grid
        from sas.report.pictures import selection_pictures
        tracker.log_pictures(name, selection_pictures(folder.figures_dir(sel_dir), picked, plan.map_method))
    with measured(costs, "evaluate"):
        evaluation = evaluate_set(distilled, plan.data.table, context, plan.model, plan.protocol, plan.ipc,
                                  tracker.lightning_logger(), metric_prefix=f"{name}/")   # Evaluation
    out = {"sampler": {**sampler.config(), "choice": name}, "distilled": str(distilled.path),
           "evaluation": evaluation.as_dict()}
    if real is not None:
        out["quality"] = _quality(plan, real, pool, picked.indices)
    if plan.ddranking:
        with measured(costs, "ddranking"):
            out["ddranking"] = _ddranking_stage(plan, picked, distilled, evaluation, folder, context, tracker)
    out["cost"] = costs
    tracker.log_results("main" if name == plan.main else name, evaluation.summary(), out.get("ddranking"))
    tracker.log_quality(name, out.get("quality"), costs)
    return out


def _quality(plan: Plan, real, encoded, indices) -> dict:
    """sas.evaluation.quality of the pool rows `indices` of an EncodedPool against the real embeddings."""
    import torch

    from sas.evaluation.quality import set_quality
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    labels = torch.tensor(encoded.pool.labels)[idx]
    return set_quality(real[0], real[1], encoded.features[idx], labels, plan.data.table.names, plan.quality_k)


def _ddranking_stage(plan: Plan, picked, distilled, evaluation, folder: RunFolder, context, tracker) -> dict:
    """DD-Ranking's scores of one distilled set (sas.evaluation.ddranking), as the package computes them: its
    hard-label runs (plan.ddranking_hard, a learning-rate search), one random subset of the real train split
    per repeat (IPC per class, a new draw each) and a random subset of the same pool, both under the run's
    protocol with the package's learning-rate search, and acc(real, hard) (trained here once and cached, or
    the package's cached figure)."""
    import torch

    from sas.artifacts import EncodedPool
    from sas.evaluation.ddranking import cached_full_accuracy, ddranking_scores, model_name
    from sas.evaluation.protocol import evaluate_set
    from sas.evaluation.protocol import train_on_real
    from sas.pools.base import list_pool
    from sas.pools.real import RealPool
    from sas.sampling import Random

    table, protocol, name, ipc = plan.data.table, plan.protocol, picked.name, picked.ipc
    pool_mult = picked.sampler["pool_mult"]

    def evaluate(d, p, which=None, what=""):
        return evaluate_set(d, table, context, plan.model, p, ipc, tracker.lightning_logger(), which,
                            f"{name}/ddranking_{what}/")

    syn_hard = evaluate(distilled, plan.ddranking_hard, what="hard")
    searched = protocol.replaced(lr_search=plan.ddranking_lr_search) if plan.ddranking_lr_search else protocol
    real = list_pool(RealPool(), None, _pool_context(plan))
    real = EncodedPool(real, torch.ones(len(real), 1), None, "")               # random needs no features
    random_real, real_dirs = [], []
    for r in range(protocol.repeats):                                 # a new draw per repeat, seeded from it
        draw = real.select("random", Random(ipc=ipc, pool_mult=None, seed=plan.seed * 1000003 + r))
        d = folder.write(draw, folder.ddranking_dir(f"real-random-ipc{ipc}", f"repeat{r}"), pool_record=False)
        random_real += evaluate(d, searched, [r], "random_real").best
        real_dirs.append(str(d.path))
    draw = picked.encoded.select("random", Random(ipc=ipc, pool_mult=pool_mult, seed=plan.seed))
    pool_random = folder.write(draw, folder.ddranking_dir(f"random-ipc{ipc}-mult{pool_mult}"), pool_record=False)
    random_pool = evaluate(pool_random, searched, what="random_pool").best
    if plan.ddranking_full == "cached":
        full, source = cached_full_accuracy(table.name, model_name(plan.model))
    else:
        _, res = train_on_real(plan.model, protocol.hard_protocol(), context)
        full, source = res["best_top1"], "trained here on the real train split (the run's hard-label protocol)"
    return {**ddranking_scores(full, syn_hard.best, evaluation.best, random_real, random_pool, plan.ddranking_weight),
            "full_source": source, "random_real_distilled": real_dirs, "random_pool_distilled": str(pool_random.path)}


def _summary(plan: Plan, results: dict, encoded, t_start: float) -> dict:
    head, main = results[plan.main]["evaluation"], plan.samplers[plan.main]
    return {"name": plan.name, "dataset": plan.data.table.name, "ipc": main.ipc, "pool_label": plan.pool_label,
            "eval_split": plan.eval_split, "embeddings": encoded.path, "pool_files": len(encoded.pool),
            "pool_mult": main.pool_mult, "sampler": plan.main, "choices": plan.choices, "model": plan.model,
            **{k: head[k] for k in ("best_top1_mean", "best_top1_std", "last_top1_mean", "last_top1_std")},
            "samplers": results, "seconds": round(time.time() - t_start, 1)}
