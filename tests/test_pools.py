"""Pool generation: tiny DiT + VAE from the config tree, nesting, batch-size invariance, resume, errors."""

from pathlib import Path

import pytest
import torch

from sas.pools.base import PoolContext
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sas.data.classes import ClassTable, get_class_table
from sas.data.images import DataError
from sas.pools.base import generate_pool
from sas.generators.dit import guided_output, respaced_timesteps
from sas.pools.dit import DiTSource
from sas.pools.folder import FolderPool
from sas.cache import image_seed

CONF = Path(__file__).resolve().parents[1] / "conf"
WOOF = get_class_table("imagewoof")
THREE = ClassTable("three", WOOF.wnids[:3], WOOF.imagenet_ids[:3], WOOF.names[:3])


def tiny_dit(**overrides) -> DiTSource:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=["+pool=dit_tiny", *[f"pool.source.{k}={v}" for k, v in overrides.items()]])
    return instantiate(cfg.pool.source, _convert_="all")


def read_all(store, n):
    return {(c, k): store.path(c, k).read_bytes() for c in range(len(store.table)) for k in range(n)}


def same_pixels(a: dict, b: dict) -> None:
    """Two pools of read_all(): the same images, pixel for pixel within one grey level. Images drawn in batches of
    another composition (another split) go through batched kernels that may round the last bit otherwise."""
    import io

    import numpy as np
    from PIL import Image
    assert a.keys() == b.keys()
    for key in a:
        x, y = (np.asarray(Image.open(io.BytesIO(d[key])), dtype=np.int16) for d in (a, b))
        assert x.shape == y.shape and np.abs(x - y).max() <= 1 and (x != y).mean() < 0.01, key


def test_tiny_dit_pool_images(tmp_path):
    store = generate_pool(tiny_dit(), THREE, 2, seed=0, cache_dir=tmp_path, progress=False)
    files, labels = store.paths(2)
    assert labels == [0, 0, 1, 1, 2, 2] and all(Path(f).suffix == ".png" for f in files)
    assert Path(files[0]).parent.name == "n02096294" and Path(files[0]).name == "000000.png"
    from PIL import Image
    with Image.open(files[0]) as img:
        assert img.size == (16, 16) and img.mode == "RGB"
    assert (store.root / "meta.json").is_file()


def test_nested_and_batch_size_invariant(tmp_path):
    small = generate_pool(tiny_dit(batch=4), THREE, 3, seed=5, cache_dir=tmp_path / "a", progress=False)
    big = generate_pool(tiny_dit(batch=7), THREE, 5, seed=5, cache_dir=tmp_path / "b", progress=False)
    assert small.root.name == big.root.name  # pool size and batch size are not in the key
    a, b = read_all(small, 3), read_all(big, 5)
    assert all(a[key] == b[key] for key in a)  # 3 per class is exactly the prefix of 5 per class
    other = generate_pool(tiny_dit(batch=4), THREE, 3, seed=6, cache_dir=tmp_path / "c", progress=False)
    assert read_all(other, 3) != a  # another seed, other images


class Interrupting:
    """Wraps a source and dies after `fail_after` batches, like a killed run."""

    def __init__(self, source, fail_after):
        self.source, self.fail_after, self.calls = source, fail_after, []

    def __getattr__(self, name):
        return getattr(self.source, name)

    def sample(self, labels, generators):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls.append(list(labels))
        return self.source.sample(labels, generators)


def test_resume_is_byte_identical_and_redoes_nothing(tmp_path):
    reference = read_all(generate_pool(tiny_dit(batch=2), THREE, 4, seed=1, cache_dir=tmp_path / "ref",
                                       progress=False), 4)
    src = Interrupting(tiny_dit(batch=2), fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        generate_pool(src, THREE, 4, seed=1, cache_dir=tmp_path / "run", progress=False, writers=1)
    store = next((tmp_path / "run" / "pools").iterdir())
    done = sorted(p for p in store.rglob("*.png"))
    assert len(done) == 6  # three batches of two finished before the kill
    stamps = {p: p.stat().st_mtime_ns for p in done}
    (done[0].parent / ".000009.png.partial").write_bytes(b"half an image")  # a stray temporary file
    resumed = Interrupting(tiny_dit(batch=2), fail_after=None)
    out = generate_pool(resumed, THREE, 4, seed=1, cache_dir=tmp_path / "run", progress=False)
    assert sum(len(c) for c in resumed.calls) == 12 - 6  # only the missing images were drawn
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert read_all(out, 4) == reference


def test_image_seeds_are_distinct_and_stable():
    seeds = {image_seed(0, c, k) for c in range(10) for k in range(100)}
    assert len(seeds) == 1000 and image_seed(3, 2, 1) == image_seed(3, 2, 1) != image_seed(3, 1, 2)


def test_guidance_modes():
    cond = torch.ones(2, 8, 1, 1) * 3
    uncond = torch.ones(2, 8, 1, 1)
    out = guided_output(torch.cat([cond, uncond]), 2, 4.0, 3)
    assert out.shape == (2, 8, 1, 1)
    assert out[:, :3].flatten().unique().tolist() == [9.0]   # 1 + 4 * (3 - 1)
    assert out[:, 3:].flatten().unique().tolist() == [3.0]   # the 4th eps channel and the variance: conditional
    assert guided_output(torch.cat([cond, uncond]), 2, 4.0, 4)[:, 3].flatten().unique().tolist() == [9.0]


def test_respaced_timesteps_follow_improved_ddpm():
    ts = respaced_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0 and ts[-2] == 20 and ts[1] == 979
    assert respaced_timesteps(1000, 1000) == list(range(999, -1, -1))


def test_null_class_follows_the_model(tmp_path):
    src = tiny_dit(**{"transformer_config.num_embeds_ada_norm": 300})
    src.check(THREE)
    assert src.num_model_classes() == 300  # the "no class" row is 300, not a hard-coded 1000


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="pool.checkpoint not found: .*missing.pt"):
        DiTSource(model=None, checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(FileNotFoundError, match=r"pool.model folder not found: .*minimax-imagewoof .*train.py"):
        DiTSource(model=str(tmp_path / "generators" / "minimax-imagewoof"))
    assert DiTSource(model="facebook/DiT-XL-2-256").model == "facebook/DiT-XL-2-256"  # a hub id: loaded lazily
    src = tiny_dit(class_ids="imagenet", **{"transformer_config.num_embeds_ada_norm": 100})
    with pytest.raises(ValueError, match=r"class 0 'Australian terrier' maps to id 193, outside the model's 100"):
        generate_pool(src, THREE, 1, 0, tmp_path, progress=False)
    with pytest.raises(ValueError, match="has no ImageNet ids"):
        tiny_dit(class_ids="imagenet").check(get_class_table("cifar10"))
    with pytest.raises(ValueError, match="pool.guidance must be"):
        DiTSource(model=None, transformer_config={}, guidance="half")


def test_folder_pool(tmp_path):
    import numpy as np
    from PIL import Image
    table = ClassTable.from_names("ab", ["a", "b"])
    for c in "ab":
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / c / f"{i}.png")
    files, labels = FolderPool(str(tmp_path)).paths(2, PoolContext(table))
    assert labels == [0, 0, 1, 1] and [Path(f).name for f in files] == ["0.png", "1.png"] * 2
    with pytest.raises(DataError, match=r"folder pool class .*/a has 3 images, fewer than the 4"):
        FolderPool(str(tmp_path)).paths(4, PoolContext(table))
    (tmp_path / "b" / "1.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot read pool image .*b/1.png"):
        FolderPool(str(tmp_path)).paths(2, PoolContext(table))
    for f in (tmp_path / "b").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"class folder has no images: .*b"):
        FolderPool(str(tmp_path)).paths(1, PoolContext(table))


class _NoiseSource:
    """A stand-in source: each image is its generator's first draws; records the batch sizes it saw."""

    def __init__(self, compile):
        self.compile, self.seen = compile, []

    def key_config(self):
        return {"kind": "noise", "compile": self.compile}

    def check(self, table):
        pass

    def batch_size(self):
        return 4

    def sample(self, labels, generators):
        self.seen.append(len(labels))
        return torch.stack([(torch.rand(3, 4, 4, generator=g) * 255).to(torch.uint8) for g in generators])


def test_compiled_sources_get_padded_batches_and_the_same_images(tmp_path):
    from sas.data.classes import get_class_table
    from sas.pools.base import generate_pool
    table = get_class_table("digits")
    padded, plain = _NoiseSource(compile=True), _NoiseSource(compile=False)
    a = generate_pool(padded, table, 3, seed=0, cache_dir=tmp_path / "a", progress=False)   # 30 images, batch 4
    b = generate_pool(plain, table, 3, seed=0, cache_dir=tmp_path / "b", progress=False)
    assert padded.seen == [4] * 8 and plain.seen == [4] * 7 + [2]      # one shape: compiled once
    for fa, fb in zip(a.paths(3)[0], b.paths(3)[0]):
        assert Path(fa).read_bytes() == Path(fb).read_bytes()


def test_dit_source_says_it_needs_the_class_table_before_sampling():
    from sas.pools.dit import DiTSource
    src = DiTSource(model=None, vae=None, transformer_config={"num_attention_heads": 2, "attention_head_dim": 8,
                    "in_channels": 4, "out_channels": 8, "num_layers": 1, "sample_size": 4, "patch_size": 2,
                    "num_embeds_ada_norm": 1000}, vae_config={"in_channels": 3, "out_channels": 3,
                    "down_block_types": ["DownEncoderBlock2D"], "up_block_types": ["UpDecoderBlock2D"],
                    "block_out_channels": [8], "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 4})
    with pytest.raises(RuntimeError, match=r"call check\(table\) first"):
        src.sample([0], [torch.Generator().manual_seed(0)])


def test_every_pool_kind_lists_through_one_interface(tmp_path):
    """paths(n_per_class, ctx) -> (files, labels) for generated, folder and real pools alike."""
    from sas.data.real import RealData
    from sas.pools.folder import FolderPool
    from sas.pools.real import RealPool
    src = tiny_dit()
    files, labels = src.paths(2, PoolContext(THREE, cache_dir=tmp_path / "cache", seed=0, progress=False))
    assert files == generate_pool(src, THREE, 2, seed=0, cache_dir=tmp_path / "cache").paths(2)[0]
    assert labels == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="no fixed size"):
        src.paths(None, PoolContext(THREE, cache_dir=tmp_path / "cache"))
    digits = RealData("digits", layout="digits", image_size=8)
    f_real, l_real = RealPool().paths(3, PoolContext(digits.table, digits, tmp_path / "cache"))
    assert len(f_real) == 30 and l_real[:3] == [0, 0, 0]
    root = Path(f_real[0]).parents[1]                          # the materialised split is a folder pool too
    f_folder, _ = FolderPool(str(root)).paths(3, PoolContext(digits.table))
    assert f_folder == f_real
