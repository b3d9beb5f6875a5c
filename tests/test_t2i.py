"""Text-to-image pools: a tiny random-init diffusers pipeline built from configs, prompted with class names,
per-image seeds (pools nest and resume), resized to the pool's resolution, and the whole distill job on it."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sas.data.classes import ClassTable
from sas.pools.base import generate_pool

from test_pools import read_all

CONF = Path(__file__).resolve().parents[1] / "conf"
CLASSES = ClassTable.from_names("custom", ["golden retriever", "tabby cat", "fire truck"])


def tiny_t2i(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=["+pool=t2i_tiny", *overrides])
    return instantiate(cfg.pool.source, _convert_="all")


def test_t2i_pool_prompts_nests_and_resizes(tmp_path):
    src = tiny_t2i("pool.source.output_size=12", "pool.source.batch=2")
    src.check(CLASSES)
    assert src.prompts([0, 2]) == ["a photo of a golden retriever", "a photo of a fire truck"]
    small = generate_pool(src, CLASSES, 2, seed=4, cache_dir=tmp_path / "a", progress=False)
    src.batch = 3                                             # one pipeline load for the whole test
    big = generate_pool(src, CLASSES, 3, seed=4, cache_dir=tmp_path / "b", progress=False)
    a, b = read_all(small, 2), read_all(big, 3)
    assert all(a[k] == b[k] for k in a)                       # 2 per class is a prefix of 3, whatever the batch
    from PIL import Image
    assert Image.open(small.path(0, 0)).size == (12, 12)
    src.template = "a drawing of a {}"
    assert src.prompts([1]) == ["a drawing of a tabby cat"]
    other = generate_pool(src, CLASSES, 1, seed=4, cache_dir=tmp_path / "a", progress=False)
    assert other.root != small.root and read_all(other, 1)[(0, 0)] != a[(0, 0)]   # the prompt: another pool
    with pytest.raises(Exception, match="pool.source.template must hold exactly one"):          # hydra wraps the ValueError
        tiny_t2i("pool.source.template='a photo'")
    with pytest.raises(Exception, match="pool.resize_filter must be one of"):
        tiny_t2i("pool.source.resize_filter=lanczos")


def test_distill_job_on_a_t2i_pool(tmp_path):
    import json

    from sas.pipeline import run

    from test_pipeline import cfg_for

    best = run(cfg_for(tmp_path, "pool=t2i_tiny"))
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 0 <= best <= 1 and res["pool_files"] == 10 * 4                # digits: 10 classes x pool_mult 2 x IPC 2
    meta = json.loads(next((tmp_path / "cache" / "pools").glob("*/meta.json")).read_text())
    assert meta["generator"]["kind"] == "t2i" and meta["generator"]["template"] == "a photo of a {}"
