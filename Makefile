# The README's commands. Each target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Which torch build `make test` installs (README, "Set-up"): here pip's configuration finds a
# CPU wheel of this version on local disk; on plain PyPI, Linux gets the CUDA build unless
# TORCH_INDEX=https://download.pytorch.org/whl/cpu. GPU users: TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
TEST_EXTRAS ?= verify,train,scaling,docs,onnx,dev
# The docs build imports no framework: the core and Sphinx are enough.
DOCS_EXTRAS ?= docs

.PHONY: demo test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[$(TEST_EXTRAS)]"
	touch $@

$(VENV)/.docs: $(VENV)/.core
	$(BIN)/pip install -q -e ".[$(DOCS_EXTRAS)]"
	touch $@

demo: $(VENV)/.core
	$(BIN)/archcalc vgg19 --table

test: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/python -m mypy --strict archcalc
	$(BIN)/python -m mypy trainers
	$(BIN)/python -m pytest

lint: $(VENV)/.test
	$(BIN)/ruff check .

# Warnings are errors: a directive that cannot compute its numbers fails the build.
docs: $(VENV)/.docs
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# The built pages in headless Chromium, offline: math typeset by the bundled MathJax, wide
# tables scroll. Needs Chromium (Debian: apt-get install -y chromium); installs nothing.
.PHONY: docs-check
docs-check: docs
	$(BIN)/python .ci/docs-check docs/_build/html

bench: $(VENV)/.test
	$(BIN)/python benchmarks/bench_analysis.py

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build
