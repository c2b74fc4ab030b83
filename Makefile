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
# The languages the book is translated into (locale/<lang>/): each gets a website in _build/html/<lang>/.
LANGUAGES := ko

.PHONY: setup system book translations test unit site-tests bench lab student key nbgrader student-ko key-ko colab locale clean distclean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

system:
	@scripts/setup_system.sh

setup: $(STAMP) system

# Every notebook is executed first, two at a time on one torch thread each, into the cache the build reads.
book: setup
	$(BOOK_ENV) $(BIN)/python -m dldna.book.execute
	$(BOOK_ENV) $(BIN)/jupyter-book build . --warningiserror --keep-going
	$(BIN)/python -m dldna.book.execute --publish
	$(MAKE) --no-print-directory translations

# The translated websites, each built from the notebooks the English build executed (none runs a second time).
translations: setup
	for lang in $(LANGUAGES); do \
	  $(BIN)/python -m dldna.book.i18n site --lang $$lang && \
	  $(BIN)/jupyter-book build _build/$$lang/source --path-output _build/$$lang --warningiserror --keep-going && \
	  rm -rf _build/html/$$lang && mv _build/$$lang/_build/html _build/html/$$lang || exit 1; \
	done

# Bring the translation catalogs (locale/<lang>/LC_MESSAGES/) up to date with the English; prints the coverage.
locale: setup
	for lang in $(LANGUAGES); do $(BIN)/python -m dldna.book.i18n update --lang $$lang || exit 1; done

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

# The student edition and answer key in Korean (student/ko/, key/ko/), from the chapters translated by the catalogs.
student-ko key-ko: setup
	$(BIN)/python -m dldna.book.i18n translate --lang ko --out _build/ko/notebooks
	$(BIN)/python -m dldna.exercises.edition $(@:-ko=) --source _build/ko/notebooks/chapters --out $(@:-ko=)/ko --lang ko

# The Colab edition (colab/, committed): the chapters with their MyST markup turned into plain Markdown. Run it
# after changing a chapter; the tests fail while colab/ is out of date.
colab: setup
	$(BIN)/python -m dldna.book.colab

clean:
	rm -rf _build student key nbgrader test-artifacts .pytest_cache

distclean: clean
	rm -rf $(VENV) *.egg-info
