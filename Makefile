# make demo: run the main job (the retail visitor report) on the bundled sample.
# make test: ruff, mypy, then every test (notebooks and docstring examples included), the
#            numeric tests once more with one BLAS thread.
# make lock: refresh constraints.txt (the pinned versions make test/demo install) from pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest -p no:cacheprovider

export NUMBA_CACHE_DIR := $(CURDIR)/$(VENV)/numba-cache
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

# tests whose assertions are numeric (BLAS, LAPACK, thread pools): run again with one thread
NUMERIC_TESTS := tests/test_synth.py tests/test_evaluate.py tests/test_calibrate.py tests/test_quality.py \
	tests/test_cluster_knn.py tests/test_cluster_clusterer.py tests/test_cluster_state.py tests/test_cluster_views.py \
	tests/test_viz.py tests/test_widgets.py

.PHONY: demo test lint typecheck test-one-thread test-other-cpu lock sample bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[all,dev]"
	mkdir -p $(NUMBA_CACHE_DIR)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m imm_analysis.cli report --clusters data/sample/clusters --files data/sample/files --tz Asia/Shanghai --location-pattern 'oss://[^/]+/([^/]+)/' --out outputs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check imm_analysis tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy imm_analysis

# the whole suite with the default thread count, then the numeric tests with one BLAS thread
test: lint typecheck
	$(PYTEST) --mpl --doctest-modules imm_analysis --nbval-lax tests notebooks
	$(MAKE) --no-print-directory test-one-thread

test-one-thread: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) -q --mpl $(NUMERIC_TESTS)

# the numeric tests as on an older x86 CPU: OpenBLAS's Haswell kernels, numpy without AVX-512
test-other-cpu: $(STAMP)
	OPENBLAS_CORETYPE=Haswell NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR $(PYTEST) -q --mpl $(NUMERIC_TESTS)

# pins for Python 3.11 on linux x86_64, every extra; `pip install imm_analysis` itself stays unpinned
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || $(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" -o constraints.txt

sample: $(STAMP)
	$(PY) -m imm_analysis.synth --out data/sample

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) outputs .pytest_cache
