"""Real-data, digits and distilled-set loaders, and their errors (each names the path)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sas.data.classes import CLASS_TABLES, ClassTable, get_class_table
from sas.data.distilled import MANIFEST, read_distilled, read_manifest, write_distilled
from sas.data.images import DataError, load_class_folders
from sas.data.real import RealData, load_digits_split

TABLE = ClassTable.from_names("toy", ["cat", "dog", "fox"])


def make_folders(root, per_class=3, size=(20, 12), table=TABLE):
    rng = np.random.default_rng(0)
    for label, folder in enumerate(table.folders):
        d = root / folder
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((size[1], size[0], 3), (40 * label + 10) % 256, dtype=np.uint8)
            arr[..., 1] = rng.integers(0, 255, (size[1], size[0]))
            Image.fromarray(arr).save(d / f"img{i}.png")
    return root


def test_class_tables_follow_protocol():
    woof = get_class_table("imagewoof")
    assert woof.wnids[0] == "n02096294" and woof.imagenet_ids[0] == 193 and woof.names[0] == "Australian terrier"
    assert woof.imagenet_ids[-1] == 229 and woof.names[-1] == "Old English sheepdog"
    assert get_class_table("imagenette").imagenet_ids == (0, 217, 482, 491, 497, 566, 569, 571, 574, 701)
    assert get_class_table("imageidc").names[1] == "green mamba"
    assert get_class_table("cifar10").names[0] == "airplane" and len(CLASS_TABLES["cifar10"]) == 10
    with pytest.raises(ValueError, match="unknown class table 'imagewolf'"):
        get_class_table("imagewolf")


def test_load_class_folders(tmp_path):
    make_folders(tmp_path)
    s = load_class_folders(tmp_path, TABLE, image_size=8)
    assert s.images.shape == (9, 3, 8, 8) and s.images.dtype == torch.uint8
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # red channel is constant per class: 10, 50, 90 survive resize and crop
    assert s.images[:, 0].float().mean(dim=(1, 2)).round().tolist() == [10.0] * 3 + [50.0] * 3 + [90.0] * 3
    assert load_class_folders(tmp_path, TABLE, 8, per_class=2).per_class() == [2, 2, 2]


def test_imagenet_layout_reports_what_it_read(tmp_path):
    make_folders(tmp_path / "train", table=get_class_table("imagewoof"), per_class=1)
    make_folders(tmp_path / "val", table=get_class_table("imagewoof"), per_class=2)
    data = RealData(name="imagewoof", root=str(tmp_path), layout="imagenet", image_size=16)
    data.check()
    val = data.load("val")
    assert len(val) == 20 and val.num_classes == 10
    assert "ImageNet layout" in val.source and str(tmp_path / "val") in val.source


@pytest.mark.parametrize("breakage,pattern", [
    ("missing root", r"data folder not found: .*nowhere"),
    ("missing class", r"class folder missing: .*dog \(class 1 'dog' of toy\)"),
    ("empty class", r"class folder has no images: .*fox"),
    ("corrupt image", r"cannot read image .*cat/img1.png"),
])
def test_bad_real_data_names_the_path(tmp_path, breakage, pattern):
    make_folders(tmp_path)
    root = tmp_path
    if breakage == "missing root":
        root = tmp_path / "nowhere"
    elif breakage == "missing class":
        for f in (tmp_path / "dog").iterdir():
            f.unlink()
        (tmp_path / "dog").rmdir()
    elif breakage == "empty class":
        for f in (tmp_path / "fox").iterdir():
            f.unlink()
    else:
        (tmp_path / "cat" / "img1.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=pattern):
        load_class_folders(root, TABLE, image_size=8)


def test_fastai_layout_without_download_says_where(tmp_path):
    data = RealData(name="imagewoof", root=str(tmp_path), layout="fastai", image_size=16)
    with pytest.raises(DataError, match=r"fastai release not found: .*imagewoof2\. .*set dataset.download=true"):
        data.load("train")


def test_fastai_layout_reads_release_and_warns_about_split(tmp_path):
    table = get_class_table("imagenette")
    make_folders(tmp_path / "imagenette2" / "val", table=table, per_class=1)
    val = RealData(name="imagenette", root=str(tmp_path), layout="fastai", image_size=8).load("val")
    assert len(val) == 10 and "fastai imagenette2 release" in val.source and "not the paper's" in val.source


def test_bad_dataset_config():
    with pytest.raises(DataError, match="dataset.layout must be one of"):
        RealData(name="imagewoof", root="/x", layout="zip")
    with pytest.raises(DataError, match="needs dataset.root"):
        RealData(name="imagewoof", layout="imagenet")


def test_digits_split_is_fixed_and_real():
    tr, te = load_digits_split("train", 16), load_digits_split("val", 16)
    assert len(tr) + len(te) == 1797 and len(te) == 540
    assert tr.images.shape[1:] == (3, 16, 16) and tr.images.dtype == torch.uint8
    assert te.per_class() == load_digits_split("val", 16).per_class()
    assert torch.equal(load_digits_split("val", 16).images, te.images)  # same split every time
    assert min(te.per_class()) >= 50  # stratified
    assert tr.images.float().std() > 20  # real strokes, not a blank image


def test_distilled_round_trip_labels_from_manifest(tmp_path):
    make_folders(tmp_path / "pool")
    # deliberately put a "dog" pool file under label 2: labels must come from the manifest, not folders
    sources = [tmp_path / "pool" / "cat" / "img0.png", tmp_path / "pool" / "dog" / "img2.png",
               tmp_path / "pool" / "fox" / "img1.png"]
    out = tmp_path / "distilled"
    write_distilled(out, sources, [0, 2, 2], TABLE, rows=[{"pool_index": i, "margin": 0.1 * i} for i in range(3)])
    rows = read_manifest(out)
    assert [r["label"] for r in rows] == [0, 2, 2] and rows[1]["class"] == "fox" and rows[2]["pool_index"] == 2
    s = read_distilled(out, TABLE, image_size=8)
    assert s.labels.tolist() == [0, 2, 2] and s.images.shape == (3, 3, 8, 8)


def test_distilled_errors(tmp_path):
    make_folders(tmp_path / "pool")
    out = tmp_path / "distilled"
    with pytest.raises(DataError, match="has no manifest"):
        read_distilled(tmp_path / "pool", TABLE, 8)
    write_distilled(out, [tmp_path / "pool" / "cat" / "img0.png"], [0], TABLE)
    (out / "cat" / json.loads((out / MANIFEST).read_text())["file"].split("/")[1]).unlink()
    with pytest.raises(DataError, match=r"names a missing file: .*cat/000000_img0.png"):
        read_distilled(out, TABLE, 8)
    (out / MANIFEST).write_text('{"file": "x.png"}\n')
    with pytest.raises(DataError, match=r"manifest.jsonl:1: bad manifest line"):
        read_distilled(out, TABLE, 8)
    with pytest.raises(DataError, match="distilled source image missing"):
        write_distilled(tmp_path / "d2", [tmp_path / "nope.png"], [0], TABLE)


def test_missing_data_folder_says_how_to_provide_it(tmp_path):
    with pytest.raises(DataError, match=r"data folder not found: .*imagenet/train\. .*paths\.data_dir=.*SAS_DATA_DIR"
                                        r".*dataset\.layout=fastai dataset\.download=true .*imagewoof2"):
        RealData(name="imagewoof", root=str(tmp_path / "imagenet")).check()
    with pytest.raises(DataError) as err:
        RealData(name="custom", root=str(tmp_path), layout="folder", classes=["a", "b"]).check()
    assert "paths.data_dir=" in str(err.value) and "fastai" not in str(err.value)   # no release for this one
