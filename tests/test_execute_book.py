"""The book's notebooks executed ahead of the build: into the cache the build reads, found there, failures named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

from dldna.book.execute import _longest_first, cache_folder, execute_book, publish
from dldna.book.i18n import EXECUTED
from tests.test_notebooks import ROOT


def _book(root: Path, cells: dict[str, str]) -> None:
    """A two-line book whose pages are notebooks with one code cell each."""
    (root / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  cache: _build/.jupyter_cache\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n" + "".join(f"  - file: {name}\n" for name in cells if name != "intro"))
    for name, source in cells.items():
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}"), nbformat.v4.new_code_cell(source)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, root / f"{name}.ipynb")


def test_the_build_reads_the_cache_the_executor_fills() -> None:
    assert cache_folder(ROOT) == ROOT / "_build" / ".jupyter_cache"
    assert "execute_notebooks: cache" in (ROOT / "_config.yml").read_text(encoding="utf-8")


def test_longest_first_puts_unknown_notebooks_first_then_by_last_time() -> None:
    paths = [Path("a.ipynb"), Path("b.ipynb"), Path("c.ipynb"), Path("d.ipynb")]
    previous = {"a.ipynb": 5.0, "b.ipynb": 50.0, "d.ipynb": 20.0}
    assert _longest_first(paths, previous) == [Path("c.ipynb"), Path("b.ipynb"), Path("d.ipynb"), Path("a.ipynb")]


def test_every_notebook_is_executed_with_one_thread_and_found_by_the_build(tmp_path: Path) -> None:
    probe = "import os\nprint(os.environ['OMP_NUM_THREADS'], os.path.basename(os.getcwd()))"
    _book(tmp_path, {"intro": probe, "chapter": "print(6 * 7)"})
    get_cache(str(cache_folder(tmp_path))).cache_notebook_file(tmp_path / "chapter.ipynb", check_validity=False)  # stale
    finished = execute_book(tmp_path, jobs=2, threads=1, timeout=60)
    assert sorted(e.path.name for e in finished) == ["chapter.ipynb", "intro.ipynb"] and not any(e.error for e in finished)
    cache = get_cache(str(cache_folder(tmp_path)))
    assert len(cache.list_cache_records()) == 2  # the stale record is gone
    outputs = {}
    for name in ("intro", "chapter"):
        _, merged = cache.merge_match_into_notebook(nbformat.read(tmp_path / f"{name}.ipynb", as_version=4))  # as myst-nb
        outputs[name] = merged.cells[1].outputs[0]["text"]
    assert outputs == {"intro": f"1 {tmp_path.name}\n", "chapter": "42\n"}


def test_a_failing_notebook_fails_the_command_and_is_named(tmp_path: Path) -> None:
    _book(tmp_path, {"intro": "print('fine')", "broken": "raise ValueError('the claim does not hold')"})
    result = subprocess.run(
        [sys.executable, "-m", "dldna.book.execute", "--root", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "broken.ipynb" in result.stderr and "the claim does not hold" in result.stderr
    assert "FAILED" in result.stdout and "intro.ipynb" in result.stdout


def test_bad_arguments_get_one_sentence(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dldna.book.execute", "--root", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "no _toc.yml" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="cache folder"):
        (tmp_path / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n")
        cache_folder(tmp_path)


def test_publish_writes_the_executed_notebooks_where_the_site_and_its_tests_read_them(tmp_path: Path) -> None:
    """myst-nb's cache mode writes the notebook it read, without outputs, into _build/jupyter_execute; the
    translated sites and the figure tests read that folder, so publish puts the executed ones there."""
    _book(tmp_path, {"intro": "print('intro')", "chapter": "print(6 * 7)"})
    execute_book(tmp_path, jobs=1, threads=1, timeout=60)
    written = publish(tmp_path)
    assert written == [tmp_path / EXECUTED / "intro.ipynb", tmp_path / EXECUTED / "chapter.ipynb"]
    assert nbformat.read(written[1], as_version=4).cells[1].outputs[0]["text"] == "42\n"
    _book(tmp_path, {"intro": "print('intro')", "chapter": "print(6 * 8)"})  # changed since it was executed
    with pytest.raises(ValueError, match=r"chapter.ipynb has no execution in .*: run make book"):
        publish(tmp_path)
