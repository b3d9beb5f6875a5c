"""Exported distilled sets read back as the same images, in every form; bad requests say why and write nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sas.data.distilled import read_manifest
from sas.export import ExportError, export

from test_pipeline import cfg_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from sas.pipeline import run
    tmp = tmp_path_factory.mktemp("export")
    run(cfg_for(tmp, "eval.repeats=1", "+sampler@compare.random=random", "progress=false"), {"sampler": "sas"})
    return tmp / "run"


def test_imagefolder_reads_back_with_dataset_folder_and_pool_folder(finished, tmp_path):
    from sas.data.real import RealData
    from sas.pools.base import PoolContext
    from sas.pools.folder import FolderPool
    out = export(finished, tmp_path / "set", "imagefolder")
    rows = read_manifest(finished / "distilled")
    names = sorted({r["class"] for r in rows}, key=lambda c: next(r["label"] for r in rows if r["class"] == c))
    data = RealData(name="exported", root=str(out), layout="folder", image_size=32, classes=names)
    back = data.load("train")
    files, labels = FolderPool(str(out / "train")).paths(None, PoolContext(data.table, cache_dir=tmp_path, seed=0))
    assert len(back) == len(rows) == len(files) and sorted(labels) == sorted(r["label"] for r in rows)
    for r in rows:                                      # byte for byte the distilled set's images
        assert (out / "train" / r["file"]).read_bytes() == (finished / "distilled" / r["file"]).read_bytes()
    card = json.loads((out / "card.json").read_text())
    assert card["sampler"]["name"] == "sas" and set(card["sha256"].values()) == {r["sha256"] for r in rows}


def test_hf_dataset_has_images_labels_scores_and_a_card(finished, tmp_path, monkeypatch):
    import datasets
    pushed = []
    monkeypatch.setattr(datasets.Dataset, "push_to_hub", lambda self, repo, **kw: pushed.append((repo, len(self))))
    out = export(finished, tmp_path / "hf", "hf", sampler="random", push_to_hub="me/digits-random")
    ds = datasets.load_from_disk(str(out))
    rows = read_manifest(finished / "compare" / "random" / "distilled")
    names = ds.features["label"].names
    assert len(ds) == len(rows) and all(names[ds[i]["label"]] == rows[i]["class"] for i in range(len(ds)))
    assert [ds[i]["pool_index"] for i in range(len(ds))] == [r["pool_index"] for r in rows]
    img = ds[0]["image"]
    from PIL import Image
    assert list(img.getdata()) == list(Image.open(finished / "compare" / "random" / "distilled" / rows[0]["file"])
                                       .convert(img.mode).getdata())
    assert "selected" in ds.column_names and pushed == [("me/digits-random", len(rows))]
    assert '"sha256"' in (out / "README.md").read_text() and "random" in (out / "README.md").read_text()


def test_indices_and_the_cli(finished, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "export.py"), str(finished), "--format", "indices",
                        "--out", str(tmp_path / "sel.json")], capture_output=True, text=True)
    assert r.returncode == 0 and "exported" in r.stdout
    sel = json.loads((tmp_path / "sel.json").read_text())
    rows = read_manifest(finished / "distilled")
    assert sel["pool_index"] == [x["pool_index"] for x in rows] and len(sel["sha256"]) == len(rows)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export(finished, tmp_path / "busy", "imagefolder")
    with pytest.raises(ExportError, match="no sampler 'kcenter'"):
        export(finished, tmp_path / "k", "imagefolder", sampler="kcenter")
    with pytest.raises(ExportError, match="--push-to-hub uploads the hf form"):
        export(finished, tmp_path / "k", "imagefolder", push_to_hub="me/x")
    assert (tmp_path / "busy" / "x").read_text() == "mine" and not (tmp_path / "k").exists()
