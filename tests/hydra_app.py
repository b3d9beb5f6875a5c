"""Run distill.py's Hydra application inside the test process, as `python distill.py ARGS` runs it.

    code = run_distill(["-m", "experiment=smoke"], cwd=tmp_path)   # 0, or the exit code Hydra gave

Hydra's basic launcher runs a sweep's jobs in the launching process, so this is the code path of a user's
command line (argument parsing, composition, sweeper, launcher, job logging) without paying a fresh interpreter
and the stack's imports for every call. Tests that need a separate process (concurrent jobs, submitit's pickled
jobs, the installed console scripts) still start one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_distill(args: list[str], cwd: Path) -> int:
    from hydra.core.global_hydra import GlobalHydra

    root = logging.getLogger()
    saved = (sys.argv, os.getcwd(), root.level, list(root.handlers))
    sys.argv = [str(ROOT / "distill.py"), *args]
    os.chdir(cwd)
    GlobalHydra.instance().clear()
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")   # Hydra finds conf/ next to the script, as a user's run
        code = 0
    except SystemExit as exit_:                      # Hydra reports an error and exits 1, as on the command line
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        sys.argv = saved[0]
        os.chdir(saved[1])
        for h in list(root.handlers):                # the job's console / file handlers, Hydra's logging config
            if h not in saved[3]:
                root.removeHandler(h)
                with contextlib.suppress(Exception):
                    h.close()
        root.setLevel(saved[2])
    return code
