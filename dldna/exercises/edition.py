"""Student editions, answer keys and nbgrader source assignments of the book's notebooks.

Solution cells (tagged ``solution``) mark their worked answer with nbgrader's markers::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

The student edition replaces each marked region by ``# YOUR CODE HERE`` and ``raise NotImplementedError()``
at the same indentation, keeps the ``check(...)`` calls, and unfolds the cells; Markdown cells tagged
``solution`` (written answers) become a prompt. The answer key keeps the solutions, unfolded. Both are
idempotent: building an edition of an edition changes nothing.

The nbgrader edition writes each exercise notebook (``<source>/exercises/<topic>.ipynb``) as the nbgrader
*source* assignment ``<out>/source/<topic>/<topic>.ipynb``, next to an ``nbgrader_config.py``: each solution
cell becomes an nbgrader solution cell (its check calls moved out), each check a locked autograded cell worth
one point that fails unless the check passes, and each written answer a manually graded answer.

Notebooks in another language (``python -m dldna.book.i18n translate``) make editions in that language:
``--lang`` names it, and the written-answer prompt is taken from the book's catalog of that language.

Usage: ``python -m dldna.exercises.edition student|key|nbgrader [--source chapters] [--out DIR] [--lang ko]``
"""

from __future__ import annotations

from dldna.exercises._teach import require_teach_extra

require_teach_extra("python -m dldna.exercises.edition", run_as_script=__name__ == "__main__")

import argparse  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import nbformat  # noqa: E402

from dldna.exercises._assignment import REPOSITORY_CHAPTERS, check_calls  # noqa: E402

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION_TAG, FOLD_TAG = "solution", "hide-input"
WRITTEN_ANSWER_PROMPT = "*Write your answer here.*"
KINDS = ("student", "key", "nbgrader")
_REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*(\n|$)", re.M | re.S)

NBGRADER_CONFIG = '''"""nbgrader's configuration for the book's exercises (written by python -m dldna.exercises.edition nbgrader)."""

c = get_config()  # noqa: F821
# Some exercises train small networks: give a cell minutes on a CPU, not nbgrader's default 30 s.
c.Execute.timeout = 900
'''


def strip_solutions(source: str) -> str:
    """``source`` with every marked solution region replaced by the student stub."""
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced solution markers in cell:\n{source}")
    return _REGION.sub(lambda m: f"{m[1]}# YOUR CODE HERE\n{m[1]}raise NotImplementedError(){m[2]}", source)


def _unfold(cell: nbformat.NotebookNode) -> None:
    tags = [tag for tag in cell.metadata.get("tags", []) if tag != FOLD_TAG]
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


def _solution_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if SOLUTION_TAG in cell.metadata.get("tags", [])]


def written_answer_prompt(lang: str = "en") -> str:
    """The prompt that replaces a written answer, in ``lang`` (a translation comes from the book's catalogs)."""
    if lang == "en":
        return WRITTEN_ANSWER_PROMPT
    from dldna.book.i18n import EDITIONS_CATALOG, interface_text

    return interface_text(REPOSITORY_CHAPTERS.parent, lang, EDITIONS_CATALOG, WRITTEN_ANSWER_PROMPT)


def student_notebook(notebook: nbformat.NotebookNode, prompt: str = WRITTEN_ANSWER_PROMPT) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with solutions removed (written answers replaced by ``prompt``) and checks kept."""
    result = nbformat.from_dict(notebook)
    for cell in _solution_cells(result):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
        else:
            cell.source = prompt
        _unfold(cell)
    return result


def key_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every solution shown unfolded."""
    result = nbformat.from_dict(notebook)
    for cell in _solution_cells(result):
        _unfold(cell)
    return result


def _grade_id(name: str) -> str:
    """An nbgrader grade id (letters, digits, ``_`` and ``-``) for an exercise id or cell id."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False) -> dict[str, Any]:
    """nbgrader's cell metadata (schema 3); a graded cell is worth one point."""
    metadata = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution, "task": False}
    return {**metadata, "points": 1} if grade else metadata


def nbgrader_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` as an nbgrader source assignment: every solution code cell becomes a solution cell without
    its ``check`` calls, followed by one locked cell per check that asserts it passes (1 point); every written
    answer becomes a manually graded answer (1 point). Raises ``ValueError`` for a check that cannot be moved
    out of its cell or two exercises with the same grade id."""
    result = nbformat.from_dict(notebook)
    cells = []
    for index, cell in enumerate(result.cells):
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            cells.append(cell)
            continue
        _unfold(cell)
        cells.append(cell)
        if cell.cell_type != "code":
            cell.metadata["nbgrader"] = _nbgrader(f"written-{_grade_id(cell.get('id', str(index)))}", solution=True, grade=True)
            continue
        calls = check_calls(cell.source)
        moved = {line for call in calls for line in range(call.first_line, call.last_line + 1)}
        cell.source = "\n".join(line for number, line in enumerate(cell.source.splitlines(), start=1) if number not in moved).rstrip()
        cell.outputs, cell.execution_count = [], None
        answer_id = _grade_id(calls[0].exercise) if calls else _grade_id(cell.get("id", str(index)))
        cell.metadata["nbgrader"] = _nbgrader(f"{answer_id}-answer", solution=True)
        for call in calls:
            source = f'from dldna.exercises import check\n\nassert check("{call.exercise}", {call.answer})'
            metadata = {"nbgrader": _nbgrader(_grade_id(call.exercise), grade=True, locked=True)}
            cells.append(nbformat.v4.new_code_cell(source, metadata=metadata))
    ids = [cell.metadata["nbgrader"]["grade_id"] for cell in cells if "nbgrader" in cell.metadata]
    if len(ids) != len(set(ids)):
        raise ValueError(f"two cells would share an nbgrader grade id: {sorted({i for i in ids if ids.count(i) > 1})}")
    result.cells = cells
    return result


def write_edition(kind: str, source: Path = REPOSITORY_CHAPTERS, out: Path | None = None, lang: str = "en") -> list[Path]:
    """Write the ``"student"`` or ``"key"`` edition of every notebook under ``source`` into ``out`` (default: a
    folder named ``kind``), keeping the folder structure, or (``"nbgrader"``) every exercise notebook of
    ``source/exercises`` as an nbgrader course folder. Returns the notebooks written."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not source.is_dir():
        raise ValueError(f"the source folder {source} does not exist: point --source at the book's chapters folder")
    out = Path(kind) if out is None else out
    folder = source / "exercises" if kind == "nbgrader" else source
    found = sorted(path for path in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in path.parts)
    if not found:
        raise ValueError(f"found no notebooks under {folder}: point --source at the book's chapters folder")
    written = []
    for path in found:
        notebook = nbformat.read(path, as_version=4)
        if kind == "nbgrader":
            target = out / "source" / path.stem / path.name
            try:
                edition = nbgrader_notebook(notebook)
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
        else:
            target = out / path.relative_to(source.parent)
            edition = student_notebook(notebook, written_answer_prompt(lang)) if kind == "student" else key_notebook(notebook)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(edition, target)
        written.append(target)
    if kind == "nbgrader":
        (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG, encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--source", type=Path, default=REPOSITORY_CHAPTERS, help="the book's chapters folder (default: this clone's)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: a folder named after the kind)")
    parser.add_argument("--lang", default="en", help="the language of the notebooks in --source (default: en)")
    arguments = parser.parse_args(argv)
    try:
        written = write_edition(arguments.kind, arguments.source, arguments.out, arguments.lang)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {len(written)} notebooks to {arguments.out or arguments.kind}/")


if __name__ == "__main__":
    main()
