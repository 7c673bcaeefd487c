# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates its own virtual environment (.venv) on first use.
# `make test` also creates .venv-brian2 with the brian2 extra, which pins
# numpy < 2 (Brian 2.9 needs it), and runs the Brian 2 tests there; in .venv
# (numpy 2) those tests are skipped and everything else runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV_BRIAN2 ?= .venv-brian2
BIN_BRIAN2 := $(VENV_BRIAN2)/bin
# 3 also hides the "failed call to cuInit" line TensorFlow prints on machines without a GPU
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_BACKEND ?= tensorflow

.PHONY: demo test bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV_BRIAN2)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV_BRIAN2)
	$(BIN_BRIAN2)/python -m pip install --quiet --upgrade pip
	$(BIN_BRIAN2)/python -m pip install --quiet -e '.[test,brian2]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/snnconv run config_templates/demo.ini

test: $(VENV)/.installed $(VENV_BRIAN2)/.installed
	$(BIN)/python -m pytest -q -n 2 --durations=10
	$(BIN_BRIAN2)/python -m pytest -q -n 2 tests/test_brian2.py

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_simulation.py

clean:
	rm -rf $(VENV) $(VENV_BRIAN2) results config_templates/results *.egg-info
