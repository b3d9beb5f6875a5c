"""Scale-out: a pool and its embeddings split over processes (gloo) and over independent shard jobs are byte for
byte what one process makes; shard jobs never hold a lock over the pool and a crashed shard is redrawn."""

import threading
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sas.encoders.cache import EncodingIncomplete, embeddings_path, encode_pool
from sas.pools.base import PoolContext, PoolIncomplete, generate_pool
from sas.shards import Shard

from test_pools import THREE, read_all, same_pixels, tiny_dit

CONF = Path(__file__).resolve().parents[1] / "conf"
N = 4                              # images per class


def tiny_clip():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=["+encoder=clip_tiny"])
    return instantiate(cfg.encoder, _convert_="all")


def _rank_job(rank: int, world: int, init_file: str, cache: str):
    """One torch.distributed rank: its shard of the pool, then its shard of the embeddings."""
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        files, _ = tiny_dit().paths(N, PoolContext(THREE, cache_dir=cache, seed=3, progress=False))
        key = {"pool": "p", "encoder": "tiny"}
        encode_pool(tiny_clip(), files, key, cache, shard=Shard.current())
    finally:
        dist.destroy_process_group()


def load(path):
    return torch.load(path, weights_only=True)


def same_embeddings(a: dict, b: dict):
    assert a["files"] == b["files"] and a["digests"] == b["digests"]
    assert [s[0] for s in a["stamps"]] == [s[0] for s in b["stamps"]]          # sizes (times differ by run)
    torch.testing.assert_close(a["features"], b["features"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_pool_and_embeddings_over_two_gloo_processes_match_one_process(tmp_path):
    import torch.multiprocessing as mp

    one = tmp_path / "one"
    files, _ = tiny_dit().paths(N, PoolContext(THREE, cache_dir=one, seed=3, progress=False))
    key = {"pool": "p", "encoder": "tiny"}
    encode_pool(tiny_clip(), files, key, one)
    two = tmp_path / "two"
    mp.spawn(_rank_job, args=(2, str(tmp_path / "init"), str(two)), nprocs=2, join=True)
    stores = [generate_pool(tiny_dit(), THREE, N, 3, c, progress=False) for c in (one, two)]
    assert read_all(stores[0], N) == read_all(stores[1], N)
    a, b = load(embeddings_path(key, one)), load(embeddings_path(key, two))
    assert [Path(f).relative_to(one) for f in a["files"]] == [Path(f).relative_to(two) for f in b["files"]]
    a["files"] = [str(Path(f).relative_to(one)) for f in a["files"]]
    b["files"] = [str(Path(f).relative_to(two)) for f in b["files"]]
    same_embeddings(a, b)
    assert not list(embeddings_path(key, two).parent.glob("*.part-*"))          # parts removed once assembled


def test_concurrent_shard_jobs_fill_one_pool_without_a_lock(tmp_path):
    reference = read_all(generate_pool(tiny_dit(), THREE, N, 1, tmp_path / "ref", progress=False), N)
    cache = tmp_path / "shared"
    errors = []

    sources = [tiny_dit(), tiny_dit()]                             # two jobs, each with its own model, built
    for src in sources:                                            # before the threads (random init seeds the
        src.check(THREE)                                           # process-wide RNG: jobs are processes)

    def job(shard):
        try:
            generate_pool(sources[shard], THREE, N, 1, cache, progress=False, shard=Shard(shard, 2))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    jobs = [threading.Thread(target=job, args=(s,)) for s in (0, 1)]
    for t in jobs:
        t.start()
    for t in jobs:
        t.join()
    assert not errors
    store = generate_pool(tiny_dit(), THREE, N, 1, cache, progress=False)
    assert read_all(store, N) == reference
    assert not (store.root / ".lock").exists()                    # nobody took the pool's lock


def test_a_shard_job_draws_only_its_stripe_and_a_crashed_stripe_is_redrawn(tmp_path):
    ctx = PoolContext(THREE, cache_dir=tmp_path, seed=2, progress=False, shard=1, num_shards=3)
    with pytest.raises(PoolIncomplete, match="shard 1 of 3 is complete; 8 images of other shards"):
        tiny_dit().paths(N, ctx)
    store = generate_pool(tiny_dit(), THREE, N, 2, tmp_path, progress=False, shard=Shard(0, 3))
    owned = {(c, k) for c in range(3) for k in range(N) if (k * 3 + c) % 3 in (0, 1)}
    assert {(c, k) for c in range(3) for k in range(N) if store.has(c, k)} == owned
    victim = store.path(0, 1)                                      # shard 1 "crashed" after this image
    victim.write_bytes(victim.read_bytes()[:20])
    files, labels = tiny_dit().paths(N, PoolContext(THREE, cache_dir=tmp_path, seed=2, progress=False))
    assert len(files) == 3 * N and labels == [c for c in range(3) for _ in range(N)]
    reference = generate_pool(tiny_dit(), THREE, N, 2, tmp_path / "ref", progress=False)
    same_pixels(read_all(store, N), read_all(reference, N))        # shards drew them in other batches
    with pytest.raises(ValueError, match="pool.shard must be in 0..pool.num_shards-1, got shard 3 of 3"):
        Shard.current(3, 3)


def test_shard_jobs_encode_parts_and_the_last_one_assembles_the_cache_file(tmp_path):
    files, _ = tiny_dit().paths(N, PoolContext(THREE, cache_dir=tmp_path, seed=0, progress=False))
    enc = tiny_clip()
    whole = encode_pool(enc, files[:5], {"k": "one"}, tmp_path / "one")       # the first 5, then all
    whole = encode_pool(enc, files, {"k": "one"}, tmp_path / "one")
    encode_pool(enc, files[:5], {"k": "two"}, tmp_path / "two")                # nested: only new files are split
    with pytest.raises(EncodingIncomplete, match="shard 1 of 2 is encoded"):
        encode_pool(enc, files, {"k": "two"}, tmp_path / "two", shard=Shard(1, 2))
    split = encode_pool(enc, files, {"k": "two"}, tmp_path / "two", shard=Shard(0, 2))
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-6)
    a, b = load(embeddings_path({"k": "one"}, tmp_path / "one")), load(embeddings_path({"k": "two"}, tmp_path / "two"))
    a.pop("key"), b.pop("key")
    same_embeddings(a, b)


def test_shard_jobs_of_the_distill_job_only_fill_the_cache(tmp_path, capsys):
    from sas.config import ConfigError
    from sas.pipeline import run

    from test_pipeline import cfg_for

    with pytest.raises(ConfigError, match="add stop_after=pool"):
        run(cfg_for(tmp_path, "pool.num_shards=2"))
    with pytest.raises(ConfigError, match="stop_after must be pool, encode or null, got 'select'"):
        run(cfg_for(tmp_path, "stop_after=select"))
    for stage in ("pool", "encode"):                                # a sweep over pool.shard per stage
        for shard in (1, 0):
            assert run(cfg_for(tmp_path, f"pool.shard={shard}", "pool.num_shards=2", f"stop_after={stage}")) != 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("shard 1 of 2 done. pool") and "images of other shards are still missing" in out[0]
    assert out[1].startswith("shard 0 of 2 done. pool complete: 40 images")
    assert "shard 1 of 2 is encoded; the parts of 1 other shard(s) are not written yet" in out[2]
    assert "embeddings complete" in out[3]
    assert not (tmp_path / "run").exists()                          # no run folder claimed by a shard job
    # a shard job's folder keeps no records of an earlier failed attempt (the report would list it as failed)
    old = tmp_path / "shard0"
    for name in ("failed.json", "config.yaml", "choices.json", ".hydra/overrides.yaml"):
        (old / name).parent.mkdir(parents=True, exist_ok=True)
        (old / name).write_text("{}")
    run(cfg_for(tmp_path, "pool.shard=0", "pool.num_shards=2", "stop_after=pool", out="shard0"))
    assert not any(old.iterdir())
    whole = run(cfg_for(tmp_path))                                  # the selection reads the shared cache
    assert whole > 0 and len(list((tmp_path / "cache" / "embeddings").glob("*.pt"))) == 1
