"""One distill job's output folder: who holds it, whose results it has, and its record files.

    folder = RunFolder(out, comparable_config)
    with folder.hold():                      # one process at a time; a second says who holds it
        finished = folder.claim(overwrite)   # results of this exact config, or None (then run)
        ...

Record files: config.yaml (the comparable config, first), choices.json (the
report's cell keys), eval_repeats.jsonl (per selection folder), results.json
(last), failed.json (a failure). A folder holding another config's results is
refused before anything is written into it; a damaged config.yaml or
results.json of this folder is reported and the job reruns.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from sas.config import ConfigError
from sas.io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["RunFolder", "FolderTaken", "FolderBusy", "RESULTS", "FAILED", "REPEATS", "CONFIG", "CHOICES"]

RESULTS, FAILED, REPEATS, CONFIG, CHOICES = "results.json", "failed.json", "eval_repeats.jsonl", "config.yaml", \
    "choices.json"
LOCK, OWNER = ".run.lock", ".run.owner"


class FolderTaken(ConfigError):
    """The folder holds another config's results (nothing was written into it)."""


class FolderBusy(RuntimeError):
    """Another process is running a job in this folder."""


class RunFolder:
    def __init__(self, path, config: dict):
        self.path, self.config = Path(path), config

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
        overwrite (then its records and selections are removed). Damaged records: warned, rerun."""
        if self.foreign():
            if not overwrite:
                raise FolderTaken(f"{self.path} holds a run of another config (see its config.yaml); set "
                                  "overwrite=true to replace it, or choose another output folder")
            for name in ("distilled", "compare", REPEATS, RESULTS, FAILED, CONFIG, CHOICES):
                p = self.path / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
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
    def start(self, choices: dict) -> None:
        """A new attempt: drop an old failure record, write config.yaml and choices.json."""
        import yaml
        (self.path / FAILED).unlink(missing_ok=True)
        atomic_write_text(self.path / CONFIG, yaml.safe_dump(json.loads(json.dumps(self.config)), sort_keys=False))
        atomic_write_text(self.path / CHOICES, json.dumps(choices, indent=1))

    def finish(self, summary: dict) -> None:
        atomic_write_text(self.path / RESULTS, json.dumps(summary, indent=1))
