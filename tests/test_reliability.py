"""No silent wrong results, no code run from data, every damaged artifact detected and rebuilt (issue list:
stale embeddings, paths from data, damaged record files, pool images and caches, one job per folder,
refused runs, W&B run ids and an unreachable server)."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sas.config import ConfigError
from sas.data.classes import ClassTable
from sas.data.distilled import read_distilled
from sas.data.images import DataError, list_class_files
from sas.io import append_line, read_jsonl

from test_pipeline import cfg_for


# ----------------------------------------------------------------------------- stale embeddings

class MeanColour:
    """A stand-in encoder: an image's mean RGB (what changes when the image changes); counts its calls."""

    def __init__(self):
        self.encoded = []

    def encode_files(self, files, progress=False):
        self.encoded += list(files)
        return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)
                                             .mean((0, 1))) for f in files])


def write_pool(root, colours):
    files = []
    for c, colour in enumerate(colours):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for k in range(3):
            p = root / f"class{c}" / f"{k}.png"
            Image.new("RGB", (8, 8), tuple(int(v) + k for v in colour)).save(p)
            files.append(str(p))
    return files


def test_changed_pool_images_are_re_encoded_by_content(tmp_path, caplog):
    from sas.encoders.cache import encode_pool
    root = tmp_path / "pool"
    files = write_pool(root, [(10, 10, 10), (200, 0, 0)])
    enc, key = MeanColour(), {"pool": [str(root)], "encoder": "mean"}
    first = encode_pool(enc, files, key, tmp_path / "cache")
    assert len(enc.encoded) == 6
    time.sleep(0.01)
    write_pool(root, [(10, 10, 10), (0, 0, 250)])              # class 1 replaced, same file names
    os.utime(files[0])                                         # class 0 touched, same bytes
    enc.encoded.clear()
    with caplog.at_level("WARNING"):
        again = encode_pool(enc, files, key, tmp_path / "cache")
    assert sorted(enc.encoded) == sorted(files[3:])            # only the changed images were encoded again
    assert "3 pool file(s) changed" in caplog.text
    torch.testing.assert_close(again[:3], first[:3])
    torch.testing.assert_close(again[3:], MeanColour().encode_files(files[3:]))
    assert again[3, 2] > 200 and first[3, 0] > 190              # the new images' features, not the old ones


def test_a_damaged_embeddings_file_is_rebuilt(tmp_path, caplog):
    from sas.encoders.cache import embeddings_path, encode_pool
    files = write_pool(tmp_path / "pool", [(5, 5, 5)])
    key = {"pool": ["p"], "encoder": "mean"}
    ref = encode_pool(MeanColour(), files, key, tmp_path / "cache")
    path = embeddings_path(key, tmp_path / "cache")
    path.write_bytes(path.read_bytes()[:50])                   # truncated zip
    enc = MeanColour()
    with caplog.at_level("WARNING"):
        torch.testing.assert_close(encode_pool(enc, files, key, tmp_path / "cache"), ref)
    assert len(enc.encoded) == 3 and "damaged or outdated" in caplog.text and str(path) in caplog.text


# ----------------------------------------------------------------------------- paths from data

def test_manifest_paths_must_stay_inside_the_set(tmp_path):
    table = ClassTable.from_names("t", ["a", "b"])
    (tmp_path / "set" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    for bad in ("../secret.png", str(tmp_path / "secret.png")):
        (tmp_path / "set" / "manifest.jsonl").write_text(json.dumps({"file": bad, "label": 0}) + "\n")
        with pytest.raises(DataError, match=r"manifest.jsonl:1: file .* must be a path inside"):
            read_distilled(tmp_path / "set", table, 4)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "CON", "x:y", " pad", ""])
def test_class_names_that_are_not_safe_folders_are_refused(name):
    with pytest.raises(ValueError, match="cannot be a folder name"):
        ClassTable.from_names("custom", ["fine", name])


def test_symlinks_leaving_the_root_or_sharing_a_class_are_refused(tmp_path):
    table = ClassTable.from_names("t", ["a", "b"])
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    Image.new("RGB", (4, 4)).save(root / "a" / "0.png")
    Image.new("RGB", (4, 4)).save(outside / "0.png")
    (root / "b").symlink_to(outside)
    with pytest.raises(DataError, match=r"class folder .*b links outside"):
        list_class_files(root, table)
    assert len(list_class_files(root, table, follow_symlinks=True)) == 2      # the named option
    (root / "b").unlink()
    (root / "b").symlink_to(root / "a")
    with pytest.raises(DataError, match=r"is the same folder as .*a: two classes would share"):
        list_class_files(root, table)
    (root / "b").unlink()
    (root / "b").mkdir()
    (root / "b" / "1.png").symlink_to(outside / "0.png")
    with pytest.raises(DataError, match=r"image .*1.png links outside"):
        list_class_files(root, table)


# ----------------------------------------------------------------------------- record files

def test_jsonl_appends_are_whole_lines_and_a_partial_last_line_is_dropped(tmp_path, caplog):
    p = tmp_path / "r.jsonl"
    append_line(p, json.dumps({"repeat": 0}))
    with open(p, "ab") as f:
        f.write(b'{"repeat": 1, "be')                          # killed during the append
    with caplog.at_level("WARNING"):
        assert read_jsonl(p) == [{"repeat": 0}]
    assert "partial last line" in caplog.text and p.read_text() == '{"repeat": 0}\n'
    append_line(p, json.dumps({"repeat": 1}))
    assert read_jsonl(p) == [{"repeat": 0}, {"repeat": 1}]
    p.write_text('{"a": 1}\n{bad\n{"a": 2}\n')                # a line cut by a failed write, then more appends
    with caplog.at_level("WARNING"):
        assert read_jsonl(p) == [{"a": 1}, {"a": 2}]
    assert "r.jsonl: dropping 1 damaged line(s) (line 2" in caplog.text and p.read_text() == '{"a": 1}\n{"a": 2}\n'


def test_the_report_marks_damaged_records_and_goes_on(tmp_path):
    from sas.report.tables import collect_runs
    for i, (name, text) in enumerate([("results.json", '{"best_top1_me'), ("choices.json", "{"),
                                      ("failed.json", "not json")]):
        job = tmp_path / f"job{i}"
        job.mkdir()
        (job / "config.yaml").write_text("dataset: {name: digits}\nsampler: {ipc: 2}\n")
        (job / "choices.json").write_text('{"sampler": "sas"}')
        (job / name).write_text(text)
    runs = {Path(r.path).name: r for r in collect_runs([tmp_path])}
    assert all(r.status == "damaged" for r in runs.values())
    assert "job0/results.json" in runs["job0"].error and "job1/choices.json" in runs["job1"].error
    assert "job2/failed.json" in runs["job2"].error


def test_every_damaged_artifact_is_detected_and_rebuilt_on_rerun(tmp_path, caplog):
    """One finished smoke run, then: results.json truncated, the last repeat line cut mid-write,
    pool_scores.jsonl deleted, a cached pool PNG emptied, the embeddings file truncated. The same command
    finishes again with the same results and every artifact whole."""
    from sas.pipeline import run
    first = run(cfg_for(tmp_path))
    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    pngs = sorted((tmp_path / "cache" / "pools").rglob("*.png"))
    victim, victim_bytes = pngs[5], pngs[5].read_bytes()
    victim.write_bytes(b"")
    emb = Path(results["embeddings"])
    emb.write_bytes(emb.read_bytes()[:100])
    (out / "results.json").write_text((out / "results.json").read_text()[:40])
    (out / "pool_scores.jsonl").unlink()
    with open(out / "eval_repeats.jsonl", "ab") as f:
        f.write(b'{"repeat": 1, "best_to')
    with caplog.at_level("WARNING"):
        again = run(cfg_for(tmp_path))
    assert again == pytest.approx(first)
    assert victim.read_bytes() == victim_bytes                 # redrawn from its own seed, byte for byte
    assert json.loads((out / "results.json").read_text())["best_top1_mean"] == pytest.approx(first)
    assert len((out / "pool_scores.jsonl").read_text().splitlines()) == 40
    assert all(json.loads(line) for line in (out / "eval_repeats.jsonl").read_text().splitlines())
    torch.load(emb, weights_only=True)
    text = caplog.text
    assert "results.json is damaged" in text and "partial last line" in text and "damaged or unrecorded" in text
    # one job is one W&B run: the resumed job logged under the same run id
    import re
    # offline-run-<date>_<time>-<id>[-<n> when two start within one second]
    ids = {re.match(r"offline-run-\d{8}_\d{6}-([a-z0-9]+)", p.name).group(1) for p in out.glob("wandb/offline-run-*")}
    assert len(list(out.glob("wandb/offline-run-*"))) == 2 and ids == {(out / "wandb_run_id").read_text().strip()}


# ----------------------------------------------------------------------------- one job per folder

def test_a_second_job_on_a_held_folder_says_who_holds_it(tmp_path):
    from sas.config import comparable_config
    from sas.pipeline import run
    from sas.run_folder import FolderBusy, RunFolder
    cfg = cfg_for(tmp_path)
    with RunFolder(tmp_path / "run", comparable_config(cfg)).hold():
        with pytest.raises(FolderBusy, match=rf"in use by another run \(pid {os.getpid()} on "):
            run(cfg)
    assert not (tmp_path / "cache").exists()                   # refused before any work


def test_a_refused_run_leaves_the_other_configs_folder_untouched(tmp_path):
    from sas.config import comparable_config
    from sas.pipeline import run
    from sas.run_folder import RunFolder
    run(cfg_for(tmp_path, "eval.repeats=1"))
    out = tmp_path / "run"
    before = {p: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    other = cfg_for(tmp_path, "sampler.ipc=1")
    with pytest.raises(ConfigError, match="holds a run of another config") as err:
        run(other)
    RunFolder(out, comparable_config(other)).fail(err.value, {"sampler": "sas"})   # what distill.py does with it
    assert {p: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before
    assert not (out / "failed.json").exists()


# ----------------------------------------------------------------------------- W&B without a network

def test_online_logging_falls_back_to_offline_quickly(monkeypatch):
    from sas.tracking import online_or_offline
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")     # nothing listens on the discard port
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    t = time.time()
    assert online_or_offline(timeout=2.0) == "offline" and time.time() - t < 3
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", str(Path(os.devnull)))
    monkeypatch.setenv("HOME", "/nonexistent-sas-home")
    assert online_or_offline(timeout=2.0) == "offline"             # no key: offline, no prompt
