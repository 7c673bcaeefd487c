# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates its own virtual environment (.venv) on first use.
# `make test` also creates .venv-brian2 with the brian2 extra, which pins
# numpy < 2 (Brian 2.9 needs it), and runs the Brian 2 tests there; in .venv
# (numpy 2) those tests are skipped and everything else runs.
# It also creates .venv-interop with the interop extra (torch 2.13.0 CPU, nir,
# nirtorch, Norse, Rockpool, XyloSim) and runs tests/test_interop_*.py there:
# snnconv's NIR and Xylo exports checked in the real consumers (skipped in .venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV_BRIAN2 ?= .venv-brian2
BIN_BRIAN2 := $(VENV_BRIAN2)/bin
VENV_INTEROP ?= .venv-interop
BIN_INTEROP := $(VENV_INTEROP)/bin
# the consumers, at the versions the README names as checked
INTEROP_TORCH ?= torch==2.13.0
INTEROP_NORSE ?= norse==1.1.0
INTEROP_PINS ?= nir==1.0.8 nirtorch==2.6 rockpool==3.1.0 xylosim==0.1.3
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

# torch first and pinned (a CPU build; anything unpinned pulls a CUDA build of several GB);
# norse without its dependencies (it declares torchvision, which from_nir does not use)
$(VENV_INTEROP)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV_INTEROP)
	$(BIN_INTEROP)/python -m pip install --quiet --upgrade pip
	$(BIN_INTEROP)/python -m pip install --quiet '$(INTEROP_TORCH)'
	$(BIN_INTEROP)/python -m pip install --quiet -e '.[test,interop]' '$(INTEROP_TORCH)' $(INTEROP_PINS)
	$(BIN_INTEROP)/python -m pip install --quiet --no-deps '$(INTEROP_NORSE)'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/snnconv run config_templates/demo.ini

test: $(VENV)/.installed $(VENV_BRIAN2)/.installed $(VENV_INTEROP)/.installed
	$(BIN)/python -m pytest -q -n 2 --durations=10
	$(BIN_BRIAN2)/python -m pytest -q -n 2 tests/test_brian2.py \
		tests/test_docs.py -k "test_brian2 or optional_packages"
	$(BIN_INTEROP)/python -m pytest -q -n 2 tests/test_interop_*.py \
		tests/test_docs.py -k "test_interop or optional_packages"

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_simulation.py

clean:
	rm -rf $(VENV) $(VENV_BRIAN2) $(VENV_INTEROP) results config_templates/results *.egg-info
