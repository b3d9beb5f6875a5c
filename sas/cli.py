"""Console scripts (pyproject [project.scripts]): the same Hydra apps as distill.py / train.py, and the report.

    sas-distill experiment=demo                  # = python distill.py experiment=demo
    sas-train generator=ddpm dataset=cifar10     # = python train.py ...
    sas-report tables outputs/ --out report/     # = python experiments/report.py ...
    sas-export outputs/demo --format hf --out woof-hf/   # = python experiments/export.py ...

The configs are the project's conf/ folder: beside the package in a source checkout, inside it (sas/conf,
packaged) in an installed wheel.
"""

from __future__ import annotations

from pathlib import Path

import sas.config  # noqa: F401  (registers the distill config schema with Hydra)

__all__ = ["distill", "train", "report", "export", "conf_dir"]


def conf_dir() -> str:
    here = Path(__file__).resolve().parent
    for where in (here / "conf", here.parent / "conf"):
        if (where / "distill.yaml").is_file():
            return str(where)
    raise FileNotFoundError(f"the sas configs (conf/distill.yaml) are neither in {here / 'conf'} nor in "
                            f"{here.parent / 'conf'}")


def _hydra(name: str, app):
    import hydra
    return hydra.main(config_path=conf_dir(), config_name=name, version_base="1.3")(app)()


def distill():
    from sas.apps import distill_app
    return _hydra("distill", distill_app)


def train():
    from sas.apps import train_app
    return _hydra("train", train_app)


def report(argv=None) -> int:
    from sas.report.cli import main
    return main(argv)


def export(argv=None) -> int:
    from sas.export import main
    return main(argv)
