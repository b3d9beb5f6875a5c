"""Reports from run folders: a comparison of every run found, the paper's tables and figures.

    python experiments/report.py tables outputs/ --out report/                    # any runs: demo, smoke, sweeps
    python experiments/report.py tables --wandb my-entity/sas --out report/        # paper tables from a W&B project
    python experiments/report.py figures outputs/fig3 --out report/                # Fig. 3 t-SNE, Fig. 4 grid

Writes report.md / report.tex (a comparison table of every finished run: rows the settings that vary, one
column per sampler, mean +- std, best per row in bold, DD-Ranking's HLR / IOR / DDRS when computed; then
the paper's tables with its figures in parentheses, missing and failed cells marked), comparison.csv and
PNG figures.
"""

import sys

from sas.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
