# make demo: run the main job (the retail visitor report) on the bundled sample.
# make test: ruff, then every test, notebooks included.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

export NUMBA_CACHE_DIR := $(CURDIR)/$(VENV)/numba-cache
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: demo test lint sample bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,imm,fast]"
	mkdir -p $(NUMBA_CACHE_DIR)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m imm_analysis.cli report --clusters data/sample/clusters --files data/sample/files --tz Asia/Shanghai --location-pattern 'oss://[^/]+/([^/]+)/' --out outputs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check imm_analysis tests benchmarks

test: lint
	$(PY) -m pytest -p no:cacheprovider --nbval-lax tests notebooks

sample: $(STAMP)
	$(PY) -m imm_analysis.synth --out data/sample

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) outputs .pytest_cache
