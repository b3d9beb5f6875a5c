"""A distilled set on disk: ImageFolder layout plus a manifest that holds the labels.

    from sas.data.distilled import write_distilled, read_distilled
    write_distilled(out_dir, sources, labels, table, rows)   # copies files, manifest last
    images = read_distilled(out_dir, image_size=224)          # ImageSet, labels from the manifest

Layout:
    <dir>/<class folder>/<file>     the selected images
    <dir>/manifest.jsonl            one JSON object per image: file (relative to
                                    <dir>), label, class, sha256 (of the bytes
                                    written), and whatever the caller adds (pool
                                    index, scores, candidate, selected)
The manifest is written last, to a temporary name and moved into place: a set
without it is incomplete. Labels are never inferred from folder or file order.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from sas.data.classes import ClassTable
from sas.data.images import DataError, ImageSet, decode_all
from sas.io import atomic_write_bytes, atomic_write_text

__all__ = ["MANIFEST", "write_distilled", "read_manifest", "read_distilled"]

MANIFEST = "manifest.jsonl"


def write_distilled(out_dir, sources: list, labels: list[int], table: ClassTable,
                    rows: list[dict] | None = None) -> Path:
    """Copy `sources` into out_dir/<class folder>/ and write the manifest; returns its path."""
    out_dir = Path(out_dir)
    if len(sources) != len(labels) or (rows is not None and len(rows) != len(labels)):
        raise DataError(f"write_distilled: {len(sources)} files, {len(labels)} labels, "
                        f"{len(rows) if rows is not None else '-'} rows")
    lines = []
    for i, (src, label) in enumerate(zip(sources, labels)):
        src = Path(src)
        if not src.is_file():
            raise DataError(f"distilled source image missing: {src}")
        label = int(label)
        rel = Path(table.folders[label]) / f"{i:06d}_{src.name}"
        data = src.read_bytes()
        atomic_write_bytes(out_dir / rel, data)
        lines.append(json.dumps({"file": rel.as_posix(), "label": label, "class": table.names[label],
                                 "sha256": hashlib.sha256(data).hexdigest(), **(rows[i] if rows else {})}))
    atomic_write_text(out_dir / MANIFEST, "\n".join(lines) + "\n")
    return out_dir / MANIFEST


def read_manifest(directory) -> list[dict]:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise DataError(f"distilled set has no manifest: {path} (incomplete or not a distilled set)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["file"], row["label"] = str(row["file"]), int(row["label"])
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}:{n}: bad manifest line ({err}): {line[:200]}") from None
        rel = Path(row["file"])
        if rel.is_absolute() or ".." in rel.parts or "\\" in row["file"] or not rel.parts:
            raise DataError(f"{path}:{n}: file {row['file']!r} must be a path inside the distilled set (relative, "
                            "no '..')")
        rows.append(row)
    if not rows:
        raise DataError(f"distilled set manifest is empty: {path}")
    return rows


def read_distilled(directory, table: ClassTable, image_size: int) -> ImageSet:
    """Read a distilled set; every file named in the manifest must exist and decode."""
    directory = Path(directory)
    rows = read_manifest(directory)
    paths = []
    for row in rows:
        p = directory / row["file"]
        if not p.is_file():
            raise DataError(f"manifest {directory / MANIFEST} names a missing file: {p}")
        if not 0 <= row["label"] < len(table):
            raise DataError(f"manifest {directory / MANIFEST}: label {row['label']} of {row['file']} "
                            f"is out of range for {table.name} ({len(table)} classes)")
        paths.append(str(p))
    labels = torch.tensor([r["label"] for r in rows], dtype=torch.int64)
    return ImageSet(decode_all(paths, image_size), labels, table, f"distilled set: {directory}", paths)
