# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates its own virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# 3 also hides the "failed call to cuInit" line TensorFlow prints on machines without a GPU
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_BACKEND ?= tensorflow

.PHONY: demo test bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/snnconv run config_templates/demo.ini

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n 2 --durations=10

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_simulation.py

clean:
	rm -rf $(VENV) results config_templates/results *.egg-info
