# Two commands on a fresh machine:
#   make book   set up .venv if missing, install, execute every chapter and build the HTML book (_build/html)
#   make test   set up as needed (including GPAW for the DFT test and the peers' venv), run the library tests
#               and execute the notebooks
# and, for the rendered book:
#   make test-book         open every page of the built book in headless Chromium (builds it first if missing)
#   make book-clean-cache  forget the executed notebooks, so the next `make book` executes every chapter
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
# Reference codes the tests compare against but that cannot share .venv (DADApy 0.3.4 needs numpy<2) get
# their own venv, used only through tests/peers.py (subprocess, arrays in .npy files).
PEERS  ?= .venv-peers
DADAPY_VERSION := 0.3.4
PEERS_STAMP := $(PEERS)/.installed-dadapy-$(DADAPY_VERSION)
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install dft peers book book-clean-cache test test-lib test-notebooks test-book dft-data models clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[book,test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

# GPAW (only for the DFT test and for making reference data): Debian's libxc, OpenBLAS and FFTW, then
# a serial build configured by .ci/gpaw_siteconfig.py. Skipped when GPAW already imports.
dft: $(STAMP)
	@$(PY) -c "import gpaw, _gpaw" 2>/dev/null || { \
	  if ! dpkg -s libxc-dev libopenblas-dev libfftw3-dev >/dev/null 2>&1; then \
	    $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq libxc-dev libopenblas-dev libfftw3-dev; fi; \
	  GPAW_CONFIG=$(abspath .ci/gpaw_siteconfig.py) $(PY) -m pip install --quiet 'gpaw>=24' tblite phonopy; }

# The peers' venv (DADApy and its own numpy<2, jax, ...), created once; .venv is never touched.
# $(PYTHON) is resolved after PATH puts .venv/bin first; venv uses the base interpreter either way.
$(PEERS_STAMP):
	rm -rf $(PEERS)
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check dadapy==$(DADAPY_VERSION)
	$(PEERS)/bin/python -c "import dadapy, numpy; print('peers: dadapy $(DADAPY_VERSION), numpy', numpy.__version__)"
	touch $@

peers: $(PEERS_STAMP)

# -W -n --keep-going: any warning (a cell that raises, a broken reference) fails the build, after reporting all.
# --all reads every page (so every warning is seen every time); the chapters are executed in the order of
# _toc.yml, and only those that changed, or whose inputs changed, since their last execution (the cache in
# _build/.jupyter_cache: `execute_notebooks: cache` and `execution_inputs` in _config.yml).
book: $(STAMP)
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going .
	@echo "Book: $(abspath _build/html/index.html)"

book-clean-cache:
	rm -rf _build/.jupyter_cache

# The browser test needs the built book; it installs Debian's chromium (apt-get) when missing.
test-book: $(STAMP)
	@test -f _build/html/index.html || $(MAKE) book
	$(PY) -m pytest -q -m book tests/test_book_build.py

test-lib: dft peers
	$(PY) -m pytest -q -m "not book" tests

test-notebooks: $(STAMP)
	$(PY) -m pytest -q --nbval-lax --nbval-current-env book

test: test-lib test-notebooks

# Regenerate or extend the DFT reference data (hours; resumable: a rerun skips finished tasks). One
# single-core process per core; --executor dask for a Dask cluster. See data/zno/README.md.
dft-data: dft
	$(PY) -m zno_book.reference sample
	$(PY) -m zno_book.reference run --executor local

# Retrain the three potentials and their committees on the current data (minutes); writes models/v1
# (committed; chapters load it through zno_book.zoo.load_or_train and retrain only if it is stale).
models: $(STAMP)
	$(PY) scripts/train_zno.py

clean:
	rm -rf _build
