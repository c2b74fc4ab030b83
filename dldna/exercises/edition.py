"""Student editions and answer keys of the book's notebooks.

Solution cells (tagged ``solution``) mark their worked answer with nbgrader's markers::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

The student edition replaces each marked region by ``# YOUR CODE HERE`` and ``raise NotImplementedError()``
at the same indentation, keeps the ``check(...)`` calls, and unfolds the cells; Markdown cells tagged
``solution`` (written answers) become a prompt. The answer key keeps the solutions, unfolded. Both are
idempotent: building an edition of an edition changes nothing.

Usage: ``python -m dldna.exercises.edition student|key [--source chapters] [--out DIR]``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION_TAG, FOLD_TAG = "solution", "hide-input"
WRITTEN_ANSWER_PROMPT = "*Write your answer here.*"
_REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*(\n|$)", re.M | re.S)


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


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with solutions removed and checks kept."""
    result = nbformat.from_dict(notebook)
    for cell in result.cells:
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
        else:
            cell.source = WRITTEN_ANSWER_PROMPT
        _unfold(cell)
    return result


def key_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every solution shown unfolded."""
    result = nbformat.from_dict(notebook)
    for cell in result.cells:
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            _unfold(cell)
    return result


def write_edition(kind: str, source: Path = Path("chapters"), out: Path | None = None) -> list[Path]:
    """Write the ``"student"`` or ``"key"`` edition of every notebook under ``source`` into ``out``
    (default: a folder named ``kind``), keeping the folder structure. Returns the files written."""
    transform = {"student": student_notebook, "key": key_notebook}.get(kind)
    if transform is None:
        raise ValueError(f"kind must be 'student' or 'key', got {kind!r}")
    out = Path(kind) if out is None else out
    written = []
    for path in sorted(source.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        target = out / path.relative_to(source.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(transform(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["student", "key"])
    parser.add_argument("--source", type=Path, default=Path("chapters"))
    parser.add_argument("--out", type=Path, default=None)
    arguments = parser.parse_args()
    written = write_edition(arguments.kind, arguments.source, arguments.out)
    print(f"wrote {len(written)} notebooks to {arguments.out or arguments.kind}/")


if __name__ == "__main__":
    main()
