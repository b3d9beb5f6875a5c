"""A run's distilled set in a form others load: an ImageFolder (and its archive), a Hugging Face `datasets`
dataset with a card, or just the pool indices and hashes.

    export(run_dir, out, "imagefolder")        # out/train/<class>/<file> + manifest.jsonl + card.json (+ .tar.gz)
    export(run_dir, out, "hf")                 # datasets.Dataset.save_to_disk(out) + README.md card
    export(run_dir, out, "indices")            # out.json: pool indices, files, SHA-256, labels, the config
    export(run_dir, out, "hf", push_to_hub="me/woof-sas-ipc10")   # also Dataset.push_to_hub (needs a login)

Every form carries the run's config, the sampler's settings and each image's SHA-256 (the manifest's), so the
set can be checked against its run. The ImageFolder reads back with dataset=folder (dataset.root=out) or
pool=folder (pool.source.root=out/train) as the same images.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["export", "FORMATS", "ExportError", "main"]

FORMATS = ("imagefolder", "hf", "indices")


class ExportError(ValueError):
    """A run folder that cannot be exported (unfinished, no such sampler, damaged set); the message says why."""


def _distilled(run_dir: Path, sampler: str | None):
    """(sampler name, its distilled folder, manifest rows, the run's results, config) of a finished run."""
    from sas.data.distilled import read_manifest
    from sas.run_folder import RunFolder

    folder = RunFolder(run_dir)
    rec = folder.read()
    if rec.status != "ok":
        raise ExportError(f"{run_dir} is not a finished run ({rec.status}{': ' + rec.error if rec.error else ''})")
    results = rec.results
    main = results.get("sampler") or next(iter(results["samplers"]))
    name = sampler or main
    if name not in results["samplers"]:
        raise ExportError(f"{run_dir} has no sampler '{name}'; it has {sorted(results['samplers'])}")
    dist = folder.distilled_dir(folder.selection_dir(name, main=name == main))
    return name, dist, read_manifest(dist), results, rec.config


def _card(name: str, rows: list, results: dict, config: dict) -> dict:
    s = results["samplers"][name]
    return {"sampler": s["sampler"], "evaluation": {k: s["evaluation"].get(k) for k in
                                                     ("best_top1_mean", "best_top1_std", "last_top1_mean",
                                                      "last_top1_std", "n_repeats")},
            "dataset": results.get("dataset"), "ipc": s["sampler"].get("ipc"), "pool_label": results.get("pool_label"),
            "images": len(rows), "sha256": {r["file"]: r.get("sha256") for r in rows}, "config": config}


def export(run_dir, out, fmt: str = "imagefolder", sampler: str | None = None, archive: bool = False,
           push_to_hub: str | None = None) -> Path:
    """Write one sampler's distilled set of a finished run (the run's own sampler by default) -> the path."""
    from sas.cache import file_digest
    from sas.io import atomic_write_text

    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if push_to_hub and fmt != "hf":
        raise ExportError("--push-to-hub uploads the hf form: add --format hf")
    run_dir, out = Path(run_dir), Path(out)
    if fmt != "indices" and out.exists() and any(out.iterdir()):       # before reading and hashing the set
        raise ExportError(f"{out} exists and is not empty: choose a new folder (nothing was written)")
    name, dist, rows, results, config = _distilled(run_dir, sampler)
    for r in rows:                                   # the set as written: every image matches its manifest
        if r.get("sha256") and file_digest(dist / r["file"]) != r["sha256"]:
            raise ExportError(f"{dist / r['file']} does not match its manifest's SHA-256: rerun the job first")
    card = _card(name, rows, results, config)
    if fmt == "indices":
        path = out if out.suffix == ".json" else out.with_suffix(".json")
        atomic_write_text(path, json.dumps({**card, "pool_index": [r["pool_index"] for r in rows],
                                            "pool_file": [r["pool_file"] for r in rows],
                                            "label": [r["label"] for r in rows]}, indent=1))
        return path
    if fmt == "imagefolder":
        return _imagefolder(dist, rows, card, out, archive)
    return _hf(dist, rows, card, out, push_to_hub, name)


def _imagefolder(dist: Path, rows: list, card: dict, out: Path, archive: bool) -> Path:
    import shutil

    from sas.io import atomic_write_text

    for r in rows:
        target = out / "train" / r["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dist / r["file"], target)
    atomic_write_text(out / "train" / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / "card.json", json.dumps(card, indent=1))
    if archive:
        import tarfile
        with tarfile.open(out.with_name(out.name + ".tar.gz"), "w:gz") as tar:
            tar.add(out, arcname=out.name)
        return out.with_name(out.name + ".tar.gz")
    return out


def _hf(dist: Path, rows: list, card: dict, out: Path, push_to_hub: str | None, name: str) -> Path:
    """A datasets.Dataset: image, label (ClassLabel of the dataset's class names), class_name, pool_index, the
    manifest's scores and sha256; its card (README.md) holds the config and hashes."""
    try:
        import datasets
    except ImportError:
        raise ExportError("--format hf needs the datasets package: pip install 'sas-distill[export]'") from None
    from sas.io import atomic_write_text

    classes = sorted({(r["label"], r["class"]) for r in rows})
    names = [c for _, c in classes]
    if [y for y, _ in classes] != list(range(len(classes))):
        raise ExportError("the set's labels are not 0..C-1: cannot build a ClassLabel")
    scores = [k for k in rows[0] if k not in ("file", "label", "class", "pool_file", "pool_index", "sampler", "sha256")
              and isinstance(rows[0][k], (int, float, bool))]
    columns = {"image": [str(dist / r["file"]) for r in rows], "label": [r["label"] for r in rows],
               "class_name": [r["class"] for r in rows], "pool_index": [r["pool_index"] for r in rows],
               "sha256": [r.get("sha256") or "" for r in rows], **{k: [r[k] for r in rows] for k in scores}}
    features = datasets.Features({
        "image": datasets.Image(), "label": datasets.ClassLabel(names=names), "class_name": datasets.Value("string"),
        "pool_index": datasets.Value("int64"), "sha256": datasets.Value("string"),
        **{k: datasets.Value("bool" if isinstance(rows[0][k], bool) else "float64") for k in scores}})
    ds = datasets.Dataset.from_dict(columns, features=features)
    ds = ds.cast_column("image", datasets.Image(decode=True))
    ds.save_to_disk(str(out))
    text = ("---\nlicense: other\ntask_categories: [image-classification]\n---\n"
            f"# A distilled set: {card['dataset']}, {name}, IPC {card['ipc']}\n\n"
            "Written by sas (semantic-aware dataset distillation). Columns: image, label, class_name, pool_index, "
            "sha256 and the selector's per-image scores.\n\n```json\n" + json.dumps(card, indent=1) + "\n```\n")
    atomic_write_text(out / "README.md", text)
    if push_to_hub:
        ds.push_to_hub(push_to_hub)
    return out


USAGE = """Export a run's distilled set: an ImageFolder, a Hugging Face datasets dataset, or pool indices.

    sas-export outputs/demo --format imagefolder --out woof-ipc10/ [--archive]
    sas-export outputs/demo --format hf --out woof-ipc10-hf/ [--push-to-hub me/woof-ipc10]
    sas-export outputs/demo --format indices --out woof-ipc10.json
    sas-export outputs/demo --sampler random ...      # a comparison sampler's set
(python experiments/export.py is the same command.)"""


def main(argv=None) -> int:
    import argparse
    import sys
    ap = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a finished run folder (holding results.json)")
    ap.add_argument("--format", default="imagefolder", choices=FORMATS)
    ap.add_argument("--out", required=True, help="the folder (or .json for indices) to write")
    ap.add_argument("--sampler", help="which sampler's set (default: the run's own)")
    ap.add_argument("--archive", action="store_true", help="imagefolder: also a .tar.gz of the folder")
    ap.add_argument("--push-to-hub", help="hf: upload the dataset to this hub repo (needs a login)")
    args = ap.parse_args(argv)
    try:
        path = export(args.run, args.out, args.format, args.sampler, args.archive, args.push_to_hub)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"exported: {path}")
    return 0
