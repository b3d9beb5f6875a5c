"""The second reliability round: every cache checked against a record written after it, every record
escaped, every key validated before work starts, every group built only from its own kind."""

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image

from sas.config import ConfigError, build_plan
from sas.data.images import DataError
from sas.encoders.cache import EncodingIncomplete, encode_pool
from sas.io import append_line, atomic_write_text, load_checked, read_jsonl, record_of, save_checked
from sas.shards import Shard

from test_pipeline import cfg_for
from test_reliability import MeanColour, write_pool


# ----------------------------------------------------------------------------- caches

def test_a_cache_file_is_trusted_only_when_it_matches_its_record(tmp_path, caplog):
    p = tmp_path / "x.pt"
    assert load_checked(p) is None                                    # missing
    save_checked({"a": torch.arange(3)}, p)
    assert record_of(p).read_text().split()[0] == str(p.stat().st_size)
    assert torch.equal(load_checked(p)["a"], torch.arange(3))
    p.write_bytes(p.read_bytes()[:40])                                # cut short after the record was written
    with caplog.at_level("WARNING"):
        assert load_checked(p) is None
    assert f"{p} is damaged" in caplog.text and (tmp_path / "x.pt.damaged").is_file() and not p.exists()
    torch.save({"a": 1}, p)                                           # no record: not finished, not "damaged"
    assert load_checked(p) is None and p.exists()


def test_a_damaged_embedding_part_is_named_set_aside_and_encoded_again(tmp_path, caplog):
    files = write_pool(tmp_path / "pool", [(10, 10, 10), (200, 0, 0)])
    enc, key, cache = MeanColour(), {"pool": "p"}, tmp_path / "cache"
    with pytest.raises(EncodingIncomplete):
        encode_pool(enc, files, key, cache, shard=Shard(0, 2))
    (part0,) = (cache / "embeddings").glob("*.part-*-0-of-2.pt")
    part0.write_bytes(part0.read_bytes()[:60])
    enc.encoded.clear()
    with pytest.raises(EncodingIncomplete):                           # its own shard finds it and re-encodes it
        encode_pool(enc, files, key, cache, shard=Shard(0, 2))
    assert enc.encoded == files[0::2]
    part0.write_bytes(part0.read_bytes()[:60])
    with caplog.at_level("WARNING"), pytest.raises(EncodingIncomplete, match=r"were damaged \(shard 0: "):
        encode_pool(enc, files, key, cache, shard=Shard(1, 2))        # the assembling job names the shard
    assert "is damaged" in caplog.text and Path(str(part0) + ".damaged").is_file()
    enc.encoded.clear()
    got = encode_pool(enc, files, key, cache, shard=Shard(0, 2))      # that shard again: encoded, assembled
    assert enc.encoded == files[0::2]
    torch.testing.assert_close(got, encode_pool(MeanColour(), files, {"pool": "one"}, tmp_path / "one"))
    assert not list((cache / "embeddings").glob("*.part-*.pt")) and not list((cache / "embeddings").glob("*.sha256"))


def test_assembly_does_not_walk_the_shard_count_and_the_count_is_bounded(tmp_path):
    files = write_pool(tmp_path / "pool", [(10, 10, 10), (200, 0, 0)])
    with pytest.raises(EncodingIncomplete, match="5 other shard"):     # 10**12 shards: as fast as 2
        encode_pool(MeanColour(), files, {"pool": "p"}, tmp_path / "cache", shard=Shard(0, 10 ** 12))
    with pytest.raises(ConfigError, match=r"pool.num_shards=1000000000000 is more than the pool's 40 images"):
        build_plan(cfg_for(tmp_path, "pool.num_shards=1000000000000", "stop_after=pool"))


def test_a_damaged_latent_chunk_is_encoded_again(tmp_path, monkeypatch, caplog):
    from omegaconf import OmegaConf

    import sas.generators.latents as latents
    from sas.data.real import load_digits_split
    from sas.generators.dit import load_vae
    monkeypatch.setattr(latents, "LATENT_CHUNK", 16)
    split = load_digits_split("val", 16, per_class=4)                                    # 40 images: 3 chunks
    vae = load_vae(vae_config=OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] /
                                                                    "conf/arch/tiny_vae.yaml"))).eval()
    first = latents.encode_split(split, vae, tmp_path / "latents", progress=False)
    chunk = tmp_path / "latents" / "chunk-000000016.pt"
    chunk.write_bytes(chunk.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        again = latents.encode_split(split, vae, tmp_path / "latents", progress=False)
    assert str(chunk) in caplog.text and Path(str(chunk) + ".damaged").is_file()
    assert torch.equal(again["moments"], first["moments"]) and torch.equal(again["labels"], first["labels"])


def test_a_damaged_model_trained_on_real_data_is_trained_again(tmp_path, caplog):
    from sas.data.real import load_digits_split
    from sas.evaluation.protocol import EvalContext, Protocol, train_on_real
    train, val, reads = load_digits_split("train", 16, per_class=5), load_digits_split("val", 16, per_class=3), []
    ctx = EvalContext(lambda: reads.append(1) or train, lambda: val, str(tmp_path), {"name": "digits"})
    model = {"_target_": "sas.models.convnet.ConvNet", "depth": 1, "width": 4}
    p = Protocol(epochs=1, image_size=16, progress=False, accelerator="cpu", augment="none", cutmix_prob=0.0)
    train_on_real(model, p, ctx)
    train_on_real(model, p, ctx)
    assert len(reads) == 1                                            # cached
    (weights,) = (tmp_path / "real_runs").glob("*.pt")
    weights.write_bytes(weights.read_bytes()[:200])
    with caplog.at_level("WARNING"):
        net, _ = train_on_real(model, p, ctx)
    assert len(reads) == 2 and f"{weights} is damaged" in caplog.text
    assert torch.equal(load_checked(weights)["classifier.weight"], net.state_dict()["classifier.weight"])


def test_a_damaged_generator_checkpoint_is_set_aside(tmp_path, caplog):
    from sas.generators.training import set_aside_damaged_checkpoints
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    torch.save({"state_dict": {"w": torch.ones(300)}}, ckpts / "on_exception.ckpt")
    torch.save({"state_dict": {"w": torch.ones(300)}}, ckpts / "last.ckpt")
    (ckpts / "last.ckpt").write_bytes((ckpts / "last.ckpt").read_bytes()[:500])
    with caplog.at_level("WARNING"):
        assert set_aside_damaged_checkpoints(ckpts) == [ckpts / "last.ckpt"]
    assert "last.ckpt is damaged" in caplog.text
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt.damaged", "on_exception.ckpt"]


# ----------------------------------------------------------------------------- the distilled set

def selection_of(files, labels, indices):
    from sas.artifacts import EncodedPool, Pool, PoolSelection
    from sas.data.classes import ClassTable
    table = ClassTable.from_names("two", ["class0", "class1"])
    encoded = EncodedPool(Pool(tuple(files), tuple(labels), table), torch.zeros(len(files), 2), None, "")
    return PoolSelection("sas", {"ipc": 1, "pool_mult": 3}, encoded, tuple(indices),
                         {"margin": [0.1 * i for i in range(len(files))]})


def test_a_damaged_or_replaced_distilled_image_is_written_again(tmp_path, caplog):
    from sas.data.distilled import read_manifest
    from sas.run_folder import RunFolder
    files = write_pool(tmp_path / "pool", [(10, 10, 10), (200, 0, 0)])
    folder, picked = RunFolder(tmp_path / "run", {}), selection_of(files, [0, 0, 0, 1, 1, 1], [1, 4])
    dist = folder.write(picked, folder.path).path
    copy = dist / read_manifest(dist)[0]["file"]
    copy.write_bytes(b"")                                             # damaged in the set
    folder.write(picked, folder.path)
    assert copy.read_bytes() == Path(files[1]).read_bytes()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(files[1])             # the pool file replaced, same name
    with caplog.at_level("WARNING"):
        folder.write(picked, folder.path)
    assert "no longer matches its pool file" in caplog.text and copy.read_bytes() == Path(files[1]).read_bytes()


# ----------------------------------------------------------------------------- writes and records

def test_a_short_write_is_continued_and_a_failed_one_raises(tmp_path, monkeypatch):
    import sas.io
    real_write, calls = os.write, []

    def short(fd, data):                                              # a full disk: a few bytes at a time
        calls.append(len(data))
        return real_write(fd, data[:5])
    monkeypatch.setattr(sas.io.os, "write", short)
    append_line(tmp_path / "r.jsonl", json.dumps({"repeat": 0, "best_top1": 0.5}))
    assert len(calls) > 1 and read_jsonl(tmp_path / "r.jsonl") == [{"repeat": 0, "best_top1": 0.5}]
    monkeypatch.setattr(sas.io.os, "write", lambda fd, data: 0)
    with pytest.raises(OSError, match="nothing written"):
        append_line(tmp_path / "r.jsonl", "{}")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        save_checked({"a": 1}, tmp_path / "b.pt")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.pt", "b.pt.sha256"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_overwrite_removes_everything_a_run_wrote(tmp_path):
    from sas.run_folder import OWNED, RunFolder
    out = tmp_path / "run"
    for name in OWNED:
        (out / name).mkdir(parents=True) if name in ("distilled", "compare", "ddranking", "figures", "wandb",
                                                      ".hydra") else (out / name).write_text("{}")
    (out / "ddranking" / "random-ipc10-mult4").mkdir()
    (out / "config.yaml").write_text("seed: 1\n")
    (out / "notes.txt").write_text("mine")
    assert RunFolder(out, {"seed": 2}).claim(overwrite=True) is None
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_refused_run_leaves_the_launch_record_of_the_folder(tmp_path):
    from hydra import compose, initialize_config_dir

    from sas.pipeline import run_plan
    from sas.run_folder import FolderTaken
    run_plan(build_plan(cfg_for(tmp_path, "eval.repeats=1"), {"sampler": "sas"}, {"overrides.yaml": "- a=1\n"}))
    with pytest.raises(FolderTaken):
        run_plan(build_plan(cfg_for(tmp_path, "sampler.ipc=1"), {"sampler": "sas"}, {"overrides.yaml": "- b=2\n"}))
    assert (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text() == "- a=1\n"
    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose("distill", return_hydra_config=True)
    assert cfg.hydra.output_subdir is None                            # Hydra itself writes nothing there


# ----------------------------------------------------------------------------- inputs checked up front

@pytest.fixture
def folder_data(tmp_path):
    root = tmp_path / "data"
    for split, n in (("train", 4), ("val", 2)):
        for c, colour in enumerate([(200, 10, 10), (10, 10, 200)]):
            (root / split / f"class{c}").mkdir(parents=True)
            for k in range(n):
                Image.new("RGB", (16, 16), tuple(v + 5 * k for v in colour)).save(root / split / f"class{c}" / f"{k}.png")
    return root


def test_a_damaged_file_of_a_streamed_split_stops_the_run_before_the_pool(tmp_path, folder_data):
    bad = folder_data / "val" / "class1" / "1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    cfg = cfg_for(tmp_path, "dataset=folder", f"dataset.root={folder_data}", "dataset.classes=[class0,class1]",
                  "dataset.image_size=16", "dataset.resident_max_gb=0", "dataset.workers=0",
                  "pool.source.class_ids=label")
    from sas.pipeline import run
    with pytest.raises(DataError, match=r"1 damaged image file\(s\) in .*1.png: cut short"):
        run(cfg)
    assert not (tmp_path / "cache" / "pools").exists()


def test_a_streamed_split_that_passed_is_not_checked_again(folder_data, tmp_path, monkeypatch):
    import sas.data.stream as stream
    from sas.data.real import RealData
    split = RealData(name="two", root=str(folder_data), layout="folder", image_size=16, classes=["class0", "class1"],
                     resident_max_gb=0, workers=0).split("val")
    stream.check_streamed(split, tmp_path, progress=False)
    monkeypatch.setattr(stream, "file_problem", lambda path: pytest.fail("checked twice"))
    stream.check_streamed(split, tmp_path, progress=False)
    os.utime(split.files[0], ns=(1, 1))                               # changed: checked again
    with pytest.raises(pytest.fail.Exception, match="checked twice"):
        stream.check_streamed(split, tmp_path, progress=False)


@pytest.mark.parametrize("overrides,message", [
    (["ddranking=true", "ddranking_weight=nan"], "ddranking_weight must be a number in"),
    (["++dataset.workers=-1"], "dataset.workers must be an integer >= 0"),
    (["++dataset.resident_max_gb=-1"], "dataset.resident_max_gb must be a number >= 0"),
    (["pool=t2i", "pool.source.template='a {name} photo'"], "pool.source.template must hold exactly one"),
    (["pool=t2i", "pool.source.template='a {} photo of {}'"], "pool.source.template must hold exactly one"),
    (["eval=softlabel_fast", "eval.teacher_weights=/nonexistent/teacher.pth"], "eval.teacher_weights: no such file"),
])
def test_bad_values_are_refused_before_any_work_naming_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_plan(cfg_for(tmp_path, *overrides))
    assert not (tmp_path / "cache").exists()


# ----------------------------------------------------------------------------- a group builds only its kind

@pytest.mark.parametrize("overrides,where", [
    (["sampler._target_=torch.load", "+sampler.f=/etc/passwd", "+sampler.weights_only=false"], "sampler._target_"),
    (["++eval.extra={_target_: torch.load, f: x}"], "eval.extra._target_"),
    (["pool.source._target_=os.system"], "pool.source._target_"),
    (["model._target_=builtins.eval"], "model._target_"),
    (["encoder._target_=sas.sampling.SAS"], "encoder._target_"),
])
def test_a_group_is_built_only_from_its_own_kind(tmp_path, monkeypatch, overrides, where):
    called = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: called.append(a))
    monkeypatch.setattr(os, "system", lambda *a, **k: called.append(a))
    with pytest.raises(ConfigError, match=rf"{where} '[a-zA-Z.]+' is not what"):
        build_plan(cfg_for(tmp_path, *overrides))
    assert called == []


def test_train_py_groups_are_checked_too(tmp_path):
    from hydra import compose, initialize_config_dir

    from sas.generators.training import train_generator
    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["generator=ddpm_tiny", "dataset=digits", f"output_dir={tmp_path / 'g'}",
                                          "+callbacks.evil={_target_: os.system, command: x}"])
    with pytest.raises(ConfigError, match=r"callbacks.evil._target_ 'os.system' is not what"):
        train_generator(cfg)
    assert not (tmp_path / "g").exists()


# ----------------------------------------------------------------------------- the report

def test_latex_output_escapes_every_special_character():
    from sas.report.latex import BOLD, END, PM, latex_text
    assert latex_text(r"\input{/etc/passwd} $x$ & 50% #1 a_b ~ ^") == (
        r"\textbackslash{}input\{/etc/passwd\} \$x\$ \& 50\% \#1 a\_b \textasciitilde{} \textasciicircum{}")
    assert latex_text(f"{BOLD}81.0{PM}1.6{END} (80.1)") == r"\textbf{81.0$\pm$1.6} (80.1)"


def test_the_report_reads_records_through_the_run_folder(tmp_path):
    from sas.report.compare import collect_entries, comparison, render_latex
    from sas.report.figures import margin_grid
    from test_experiments import full_run
    full_run(tmp_path / "ddranking", "a", "sas", 2, {"sas": [0.8]}, extra={"pool": r"\input{/etc/passwd}"})
    full_run(tmp_path / "wandb", "b", "sas", 2, {"sas": [0.7]}, extra={"pool": "plain"})
    (tmp_path / "c").mkdir()                                          # a number that is a string: damaged
    (tmp_path / "c" / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "c" / "choices.json").write_text("{}")
    (tmp_path / "c" / "results.json").write_text(json.dumps({"best_top1_mean": "0.9", "best_top1_std": 0,
                                                            "last_top1_mean": 0, "last_top1_std": 0}))
    entries, skipped = collect_entries([tmp_path])
    assert sorted(Path(e.path).parent.name for e in entries) == ["ddranking", "wandb"]   # named so, still found
    assert len(skipped) == 1 and "damaged" in skipped[0] and "results.json" in skipped[0]
    tex = render_latex(comparison(entries, skipped))
    assert r"\input" not in tex and r"\textbackslash{}input\{/etc/passwd\}" in tex
    job = tmp_path / "ddranking" / "a"
    (job / "distilled").mkdir()
    (job / "distilled" / "manifest.jsonl").write_text(json.dumps({"file": "../../../c/config.yaml", "label": 0,
                                                                  "class": "x"}) + "\n")
    with pytest.raises(DataError, match="must be a path inside the distilled set"):
        margin_grid(job, tmp_path / "fig4.png")
