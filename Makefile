# Two commands matter: `make book` builds the website (executing every notebook) and `make test` runs the
# whole test suite (unit tests, the book build, then tests of the built site in a real browser).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
# Book builds grade every worked exercise solution and keep progress bars out of the pages.
BOOK_ENV := DLDNA_STRICT_CHECKS=1 DLDNA_PROGRESS=0

.PHONY: setup system book test unit site-tests bench lab student key nbgrader colab clean distclean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

system:
	@scripts/setup_system.sh

setup: $(STAMP) system

book: setup
	$(BOOK_ENV) $(BIN)/jupyter-book build . --warningiserror --keep-going

unit: setup
	$(BIN)/pytest -m "not book and not browser" --durations=15

site-tests: setup
	$(BIN)/pytest -m "book or browser" --durations=10

test: unit book site-tests

# Speed, printed as ratios (never asserted): every benchmark at its defaults on dldna's default device (a GPU
# when there is one), after the tests that need a CUDA device (skipped without one).
bench: setup
	$(BIN)/pytest -m gpu -q
	for script in live landscape hessian scale; do $(BIN)/python bench/$$script.py || exit 1; done

lab: setup
	$(BIN)/python -m pip install --quiet jupyterlab
	$(BIN)/jupyter lab chapters

student key nbgrader: setup
	$(BIN)/python -m dldna.exercises.edition $@

# The Colab edition (colab/, committed): the chapters with their MyST markup turned into plain Markdown. Run it
# after changing a chapter; the tests fail while colab/ is out of date.
colab: setup
	$(BIN)/python -m dldna.book.colab

clean:
	rm -rf _build student key nbgrader test-artifacts .pytest_cache

distclean: clean
	rm -rf $(VENV) *.egg-info
