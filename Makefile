# Set-up is automatic: the first `make demo` or `make test` creates .venv and
# installs the project (torch/torchvision pinned by constraints.txt).
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
export WANDB_MODE ?= offline

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --progress-bar off -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) distill.py experiment=demo
	@$(PY) experiments/report.py tables outputs/demo --out outputs/demo/report | tail -1

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=10

bench: $(STAMP)
	$(PY) benchmarks/selection.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis
