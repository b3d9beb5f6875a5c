"""The distribution installs under its own name with console scripts that reach the same apps and configs."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path


def test_distribution_name_scripts_and_packaged_configs():
    dist = metadata.distribution("sas-distill")
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    assert scripts == {"sas-distill": "sas.cli:distill", "sas-train": "sas.cli:train", "sas-report": "sas.cli:report",
                       "sas-export": "sas.cli:export"}
    assert dist.metadata["Summary"] and any("Image Recognition" in c for c in dist.metadata.get_all("Classifier"))
    from sas.cli import conf_dir
    assert (Path(conf_dir()) / "distill.yaml").is_file()
    assert (Path(__file__).parents[1] / "sas" / "conf" / "distill.yaml").is_file()    # what a wheel packages


def test_the_scripts_run(tmp_path):
    bin_dir = Path(sys.executable).parent
    out = subprocess.run([str(bin_dir / "sas-report"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tables" in out.stdout
    out = subprocess.run([str(bin_dir / "sas-distill"), "--cfg", "job", "experiment=smoke"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0 and "name: smoke" in out.stdout
