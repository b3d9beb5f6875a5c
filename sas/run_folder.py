"""One distill job's output folder: who holds it, whose results it has, and every file in it. The only code that
knows these file names: the pipeline writes through it, the report reads through it.

    folder = RunFolder(out, comparable_config)
    with folder.hold():                      # one process at a time; a second says who holds it
        finished = folder.claim(overwrite)   # results of this exact config, or None (then run)
        folder.start(choices)
        distilled = folder.write(selection, folder.selection_dir("sas", main=True))   # -> DistilledSet
        folder.finish(summary)
    runs = [f.read() for f in RunFolder.find(["outputs/"])]    # the report: RunRecord per job folder

Files: config.yaml (the comparable config, first), choices.json (the report's cell keys), per selection
distilled/ (the images and manifest.jsonl), pool_scores.jsonl (the whole pool's record) and eval_repeats.jsonl
(finished repeats), compare/<sampler>/ (the same for comparison samplers), ddranking/ (DD-Ranking's random
subsets), figures/, wandb_run_id and wandb/ (the W&B run), results.json (last), failed.json (a failure). A
folder is a run folder when it holds choices.json (written with config.yaml) or failed.json (Hydra's .hydra/ and
W&B's files/ hold a config.yaml of their own). A folder holding another config's results is refused before anything is written
into it; a damaged config.yaml or results.json of this folder is reported and the job reruns.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from sas.config import ConfigError
from sas.io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["RunFolder", "RunRecord", "FolderTaken", "FolderBusy", "RESULTS", "FAILED", "REPEATS", "CONFIG",
           "CHOICES", "POOL_SCORES"]

RESULTS, FAILED, REPEATS, CONFIG, CHOICES = "results.json", "failed.json", "eval_repeats.jsonl", "config.yaml", \
    "choices.json"
POOL_SCORES, WANDB_ID, DISTILLED, COMPARE, DDRANKING, FIGURES, WANDB = "pool_scores.jsonl", "wandb_run_id", \
    "distilled", "compare", "ddranking", "figures", "wandb"
LOCK, OWNER, LAUNCH = ".run.lock", ".run.owner", ".hydra"
OWNED = (DISTILLED, COMPARE, DDRANKING, FIGURES, WANDB, REPEATS, RESULTS, FAILED, CONFIG, CHOICES, POOL_SCORES,
         WANDB_ID, LAUNCH)  # everything a run writes: what overwrite=true removes
RECORDS = (FAILED, CONFIG, CHOICES, LAUNCH)   # what says a job ran here: a cache-filling job clears them


class FolderTaken(ConfigError):
    """The folder holds another config's results (nothing was written into it)."""


class FolderBusy(RuntimeError):
    """Another process is running a job in this folder."""


@dataclass
class RunRecord:
    """A run folder as the report sees it."""

    path: str
    status: str                   # ok | failed | incomplete | damaged
    config: dict
    choices: dict
    results: dict | None = None
    error: str | None = None      # the failure, or "damaged <file>: <why>"


def _parse(path: Path, parse):
    """(content, None), or (None, "damaged <path>: <why>") for a file that does not parse."""
    import yaml
    try:
        return parse(path.read_text()), None
    except (ValueError, yaml.YAMLError, OSError, UnicodeDecodeError) as err:
        return None, f"damaged {path}: {str(err).splitlines()[0][:120]}"


class RunFolder:
    def __init__(self, path, config: dict | None = None):
        self.path, self.config = Path(path), config

    # ------------------------------------------------------------------ finding run folders (the report)
    @classmethod
    def find(cls, roots) -> list["RunFolder"]:
        """Every run folder under the roots (a root may be one): each folder with a choices.json or a failed.json
        (config.yaml alone is not enough: Hydra's .hydra/ and W&B's files/ hold one too), in path order."""
        found = set()
        for root in roots:
            root = Path(root)
            found.update(record.parent for record in (*root.rglob(CHOICES), *root.rglob(FAILED)))  # failed.json
                                                                                     # alone: an unresolvable config
        return [cls(p) for p in sorted(found)]

    def read(self) -> RunRecord:
        """The record of a run: finished, failed, unfinished, or with a damaged record file (the error names it)."""
        import yaml
        cfg, bad = _parse(self.path / CONFIG, yaml.safe_load) if (self.path / CONFIG).is_file() else ({}, None)
        if not isinstance(cfg, dict):
            cfg, bad = {}, bad or f"damaged {self.path / CONFIG}: not a mapping"
        choices, bad_choices = _parse(self.path / CHOICES, json.loads) if (self.path / CHOICES).is_file() else ({}, None)
        bad = bad or bad_choices
        rec = RunRecord(str(self.path), "incomplete", cfg, choices if isinstance(choices, dict) else {})
        if (self.path / RESULTS).is_file():
            res, bad_res = _parse(self.path / RESULTS, json.loads)
            if isinstance(res, dict) and all(isinstance(res.get(k), (int, float)) for k in
                                             ("best_top1_mean", "best_top1_std", "last_top1_mean", "last_top1_std")):
                rec.results, rec.status = res, "ok"
            else:
                bad = bad or bad_res or f"damaged {self.path / RESULTS}: figures missing or not numbers"
        elif (self.path / FAILED).is_file():
            failed, bad_failed = _parse(self.path / FAILED, json.loads)
            rec.status = "failed"
            rec.error = failed.get("error") if isinstance(failed, dict) else None
            bad = bad or bad_failed
        if bad:
            rec.status, rec.error = "damaged", bad
        return rec

    def results(self) -> dict:
        return json.loads((self.path / RESULTS).read_text())

    # ------------------------------------------------------------------ holding the folder
    def hold(self):
        """A context that holds the folder for this process: a second job on it raises FolderBusy at once,
        naming the holder (pid, host, start time)."""
        from contextlib import contextmanager

        from filelock import FileLock, Timeout

        @contextmanager
        def held():
            self.path.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.path / LOCK), timeout=0)
            try:
                lock.acquire()
            except Timeout:
                owner = (self.path / OWNER).read_text().strip() if (self.path / OWNER).is_file() else "unknown"
                raise FolderBusy(f"{self.path} is in use by another run ({owner}); wait for it to finish or "
                                 "choose another output folder") from None
            try:
                atomic_write_text(self.path / OWNER, f"pid {os.getpid()} on {socket.gethostname()} since "
                                                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                yield self
            finally:
                (self.path / OWNER).unlink(missing_ok=True)
                lock.release()
        return held()

    # ------------------------------------------------------------------ whose folder is it
    def _stored_config(self):
        import yaml
        try:
            return yaml.safe_load((self.path / CONFIG).read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            log.warning("%s is damaged (%s); the job reruns in this folder", self.path / CONFIG,
                        str(err).splitlines()[0])
            return None

    def foreign(self) -> bool:
        """True when the folder holds a readable config.yaml of another config."""
        if not (self.path / CONFIG).is_file():
            return False
        stored = self._stored_config()
        return stored is not None and stored != json.loads(json.dumps(self.config))

    def claim(self, overwrite: bool = False) -> dict | None:
        """This config's finished results, or None (run it). Another config's folder: FolderTaken unless
        overwrite (then everything a run writes is removed). Damaged records: warned, rerun."""
        if self.foreign():
            if not overwrite:
                raise FolderTaken(f"{self.path} holds a run of another config (see its config.yaml); set "
                                  "overwrite=true to replace it, or choose another output folder")
            self._remove(OWNED)
            return None
        results = self.path / RESULTS
        if not results.is_file() or self._stored_config() is None:
            return None
        try:
            finished = json.loads(results.read_text())
            finished["best_top1_mean"], finished["samplers"]
            return finished
        except (ValueError, KeyError, TypeError) as err:
            log.warning("%s is damaged (%s); the job reruns", results, str(err).splitlines()[0][:120])
            results.unlink()
            return None

    # ------------------------------------------------------------------ records
    def _write_config(self, choices: dict, launch: dict | None) -> None:
        import yaml
        for name, text in (launch or {}).items():          # Hydra's launch record: config, hydra, overrides
            atomic_write_text(self.path / LAUNCH / name, text)
        atomic_write_text(self.path / CONFIG, yaml.safe_dump(json.loads(json.dumps(self.config)), sort_keys=False))
        atomic_write_text(self.path / CHOICES, json.dumps(choices, indent=1))

    def start(self, choices: dict, launch: dict | None = None) -> None:
        """A new attempt: drop an old failure record, write the launch record (.hydra/), config.yaml and
        choices.json."""
        (self.path / FAILED).unlink(missing_ok=True)
        self._write_config(choices, launch)

    def clear_records(self) -> None:
        """A cache-filling job (stop_after) leaves no run records: those of an earlier failed attempt in its
        folder are removed (a folder with results is left alone)."""
        if (self.path / RESULTS).is_file():
            return
        self._remove(RECORDS)

    def _remove(self, names) -> None:
        for name in names:
            p = self.path / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    def finish(self, summary: dict) -> None:
        atomic_write_text(self.path / RESULTS, json.dumps(summary, indent=1))

    def fail(self, err: BaseException, choices: dict | None = None, launch: dict | None = None) -> None:
        """failed.json (error and traceback), so sweeps and the report show the job as failed; a job that failed
        before its config.yaml was written (bad values) gets it here, so the report can place it in its cell.
        A folder of another job (FolderTaken, FolderBusy) or another config gets nothing."""
        import traceback
        if isinstance(err, (FolderTaken, FolderBusy)) or (self.config is not None and self.foreign()):
            log.error("job refused: %s (nothing written to %s)", err, self.path)
            return
        if self.config is not None and not (self.path / CONFIG).is_file():
            try:
                self._write_config(choices or {}, launch)
            except Exception:  # an unwritable config: failed.json alone still records the failure
                pass
        atomic_write_text(self.path / FAILED, json.dumps({
            "error": f"{type(err).__name__}: {err}",
            "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__))[-20000:]}, indent=1))
        log.error("job failed: %s (recorded in %s)", err, self.path / FAILED)

    def wandb_id(self) -> str:
        """The W&B run id of this job folder: made once, read back on every resume."""
        path = self.path / WANDB_ID
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        import secrets
        run_id = secrets.token_hex(6)                      # W&B ids: lowercase letters and digits
        atomic_write_text(path, run_id + "\n")
        return run_id

    # ------------------------------------------------------------------ selections
    def selection_dir(self, name: str, main: bool) -> Path:
        """Where a sampler's selection lives: the folder itself for the run's sampler, compare/<name> otherwise."""
        return self.path if main else self.path / COMPARE / name

    def ddranking_dir(self, *parts: str) -> Path:
        return self.path.joinpath(DDRANKING, *parts)

    def figures_dir(self, sel_dir: Path) -> Path:
        return Path(sel_dir) / FIGURES

    def distilled_dir(self, sel_dir: Path | None = None) -> Path:
        return Path(sel_dir or self.path) / DISTILLED

    def write(self, selection, where: Path, pool_record: bool = True):
        """The write stage: the selected images and their manifest (distilled/), and the whole pool's record
        (pool_scores.jsonl; pool_record=False: not, e.g. for DD-Ranking's random subsets) -> DistilledSet. Both are kept when they already hold exactly this selection of
        these files (a resumed run): every selected file must match its recorded SHA-256, and so must the pool
        file it was copied from (a folder pool's image replaced under the same name is copied again)."""
        from sas.artifacts import DistilledSet
        from sas.data.distilled import write_distilled

        where = Path(where)
        files, labels = selection.encoded.pool.files, selection.encoded.pool.labels
        rec, idx = selection.record, list(selection.indices)
        dist = self.distilled_dir(where)
        if not _written(dist, idx, files):
            if dist.exists():
                shutil.rmtree(dist)
            rows = [{"pool_index": i, "pool_file": files[i], "sampler": selection.name,
                     **{k: rec[k][i] for k in rec}} for i in idx]
            write_distilled(dist, [files[i] for i in idx], [labels[i] for i in idx], selection.encoded.pool.classes,
                            rows)
        scores = where / POOL_SCORES
        if pool_record and _lines(scores) != len(files):
            atomic_write_text(scores, "\n".join(json.dumps(
                {"pool_index": i, "file": files[i], "label": labels[i], **{k: rec[k][i] for k in rec}})
                for i in range(len(files))) + "\n")
        return DistilledSet(dist, selection, where / REPEATS)

    def pool_scores(self, sel_dir: Path | None = None) -> list[dict]:
        path = Path(sel_dir or self.path) / POOL_SCORES
        return [json.loads(line) for line in path.read_text().splitlines() if line]


def _written(dist: Path, idx: list[int], files) -> bool:
    """The distilled set holds exactly these pool indices, every file its manifest names with the SHA-256 it
    was written with, copied from pool files that still hold those bytes."""
    from sas.cache import file_digest
    from sas.data.distilled import MANIFEST, read_manifest
    from sas.data.images import DataError
    if not (dist / MANIFEST).is_file():
        return False
    try:
        rows = read_manifest(dist)
    except DataError:
        return False
    if [r.get("pool_index") for r in rows] != idx:
        return False
    for r in rows:
        copy, source = dist / r["file"], Path(files[r["pool_index"]])
        if "sha256" not in r or not copy.is_file() or not source.is_file():
            return False
        if file_digest(copy) != r["sha256"] or file_digest(source) != r["sha256"]:
            log.warning("distilled image %s no longer matches its pool file %s: writing the set again", copy, source)
            return False
    return True


def _lines(path: Path) -> int:
    """Complete JSON lines in a file written whole (0 when missing or damaged)."""
    try:
        return sum(1 for line in path.read_text().splitlines() if json.loads(line) is not None)
    except (OSError, ValueError):
        return 0
