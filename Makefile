# provkit: `make demo` runs the story end to end, `make test` runs the suite.
# Both create .venv on first use and install the project from its own files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.provkit-installed
export PROVKIT_HOME ?= $(CURDIR)/demo-out/home

.PHONY: demo test test-core-install bench lint install clean fuzz rubrics screenshots

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,diffusers,clip,bench,scale,serve]'
	@touch $(STAMP)

demo: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash demo.sh

test: $(STAMP)
	env -u PROVKIT_HOME $(PY) -m pytest -q -n 2 --dist loadfile

# `pip install provkit` with no extras, in a fresh venv, runs the everyday verbs (CI runs it
# after `make test`); the downloaded wheels stay in $(VENV)/core-wheels for the next run.
test-core-install: $(STAMP)
	env -u PROVKIT_HOME PROVKIT_WHEEL_CACHE=$(CURDIR)/$(VENV)/core-wheels \
	  $(PY) -m pytest -q -s -m core_install tests/test_core_install.py

# The long fuzz run: PROVKIT_FUZZ_CASES mutated files (default 10000) over PROVKIT_FUZZ_JOBS
# processes; figures in fuzz-out/summary.json. `make test` runs a short version of it.
fuzz: $(STAMP)
	env -u PROVKIT_HOME PROVKIT_FUZZ_CASES=$${PROVKIT_FUZZ_CASES:-10000} $(PY) -m tests.fuzz.run_long

bench: $(STAMP)
	for b in bench/*.py; do case $$b in bench/gpu_*) continue;; bench/throughput.py) echo "== $$b --quick"; $(PY) $$b --quick || exit 1; continue;; esac; echo "== $$b"; $(PY) $$b || exit 1; done

# The desk page's pictures in docs/serve.md (docs/img/desk-*.png), made in real Chromium.
screenshots: $(STAMP)
	env -u PROVKIT_HOME $(PY) tests/screenshots.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The C2PA rubric YAML files, parsed once into the JSON verify reads (a test checks it).
rubrics: $(STAMP)
	$(PY) -c "from provkit.provenance import signals; from pathlib import Path; \
	  Path('provenance/data/c2pa', signals.COMPILED_FILE).write_bytes(signals.compile_rubrics())"

clean:
	rm -rf $(VENV) demo-out bench-out fuzz-out .pytest_cache
