"""Exercises: the notebook format, the student edition and answer key, and the checks' behaviour.

That every worked solution passes its check is tested where it is cheapest: the book build runs every
exercise notebook with DLDNA_STRICT_CHECKS=1 (a failing check raises), and tests/test_book.py reads the
verdicts in the built pages. Here the student edition is executed to show every stub fails its check.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from dldna.exercises import check, exercises, grade, register
from dldna.exercises._assignment import CHECK_CALL
from dldna.exercises._runner import execute_notebook
from dldna.exercises.edition import BEGIN, END, SOLUTION_TAG, key_notebook, strip_solutions, student_notebook, write_edition

ROOT = Path(__file__).resolve().parents[1]
EXERCISE_NOTEBOOKS = sorted((ROOT / "chapters" / "exercises").glob("*.ipynb"))
HEADING = re.compile(r"^## Exercise (\S+) \((by hand|implement|explore)\): ", re.M)


def solution_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if c.cell_type == "code" and SOLUTION_TAG in c.metadata.get("tags", [])]


def test_strip_solutions_keeps_indentation_and_checks() -> None:
    source = (
        "import math\n"
        "def f(x):\n"
        f"    {BEGIN}\n"
        "    y = math.sqrt(x)\n"
        "    return y\n"
        f"    {END}\n"
        "\n"
        f"{BEGIN}\n"
        "answer = f(4)\n"
        f"{END}\n"
        'check("id", answer)'
    )
    assert strip_solutions(source) == (
        "import math\n"
        "def f(x):\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "\n"
        "# YOUR CODE HERE\n"
        "raise NotImplementedError()\n"
        'check("id", answer)'
    )
    assert strip_solutions("x = 1\n") == "x = 1\n"
    with pytest.raises(ValueError, match="unbalanced"):
        strip_solutions(f"{BEGIN}\nx = 1\n")


def test_check_reports_without_revealing_and_strict_mode_raises(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    register("selftest.square", hint="Multiply the number by itself.")(lambda answer: (answer == 49, f"{answer} is not it."))
    try:
        assert check("selftest.square", 49) is True
        assert "✓ Correct" in capsys.readouterr().out
        monkeypatch.delenv("DLDNA_STRICT_CHECKS", raising=False)
        assert check("selftest.square", 48) is False
        out = capsys.readouterr().out
        assert "✗ Not yet" in out and "Multiply" in out and "49" not in out
        monkeypatch.setenv("DLDNA_STRICT_CHECKS", "1")
        with pytest.raises(AssertionError):
            check("selftest.square", 48)

        def broken():
            raise NotImplementedError

        register("selftest.broken", hint="h")(lambda answer: answer())
        assert grade("selftest.broken", broken) == (False, "Not implemented yet: replace the `raise NotImplementedError()` line with your code.")
        with pytest.raises(KeyError, match="no exercise"):
            grade("selftest.missing", 1)
    finally:
        from dldna import exercises as module

        module._REGISTRY.pop("selftest.square", None)
        module._REGISTRY.pop("selftest.broken", None)


def test_while_grading_check_leaves_the_checking_to_the_grader(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def expensive(answer):
        raise AssertionError("the notebook's own check ran while grading")

    register("selftest.expensive", hint="h")(expensive)
    try:
        monkeypatch.setenv("DLDNA_GRADING", "1")
        monkeypatch.setenv("DLDNA_STRICT_CHECKS", "1")
        assert check("selftest.expensive", 1) is False
        assert capsys.readouterr().out == "[selftest.expensive]: the grader checks this answer after the cell.\n"
    finally:
        from dldna import exercises as module

        module._REGISTRY.pop("selftest.expensive", None)


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_notebook_format(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    headings = HEADING.findall(markdown)
    assert len(headings) >= 5, f"{path.name} has {len(headings)} exercises; each chapter needs at least five"
    assert {kind for _, kind in headings} == {"by hand", "implement", "explore"}
    cells = solution_cells(notebook)
    assert len(cells) >= len(headings)
    registered = exercises()
    for cell in cells:
        assert "hide-input" in cell.metadata["tags"], "solution cells are folded on the website"
        assert cell.source.count(BEGIN) >= 1 and cell.source.count(BEGIN) == cell.source.count(END)
        ids = CHECK_CALL.findall(cell.source)
        assert ids, f"solution cell without a check(...) call:\n{cell.source}"
        assert all(i in registered for i in ids), f"unregistered exercise id in {ids}"


def test_exercise_ids_are_unique_across_the_book() -> None:
    ids = [i for path in EXERCISE_NOTEBOOKS for c in solution_cells(nbformat.read(path, as_version=4)) for i in CHECK_CALL.findall(c.source)]
    assert len(ids) == len(set(ids))


def _solution_lines(notebook: nbformat.NotebookNode) -> set[str]:
    """Substantial lines that appear only inside solution regions (not also elsewhere in the notebook)."""
    inside, everywhere_else = set(), []
    for cell in notebook.cells:
        regions = re.findall(rf"{re.escape(BEGIN)}\n(.*?){re.escape(END)}", cell.source, re.S)
        for region in regions:
            inside |= {line.strip() for line in region.splitlines() if len(line.strip()) > 12}
        everywhere_else.append(re.sub(rf"{re.escape(BEGIN)}\n.*?{re.escape(END)}", "", cell.source, flags=re.S))
    other_text = "\n".join(everywhere_else)
    return {line for line in inside if line not in other_text}


def test_student_edition_has_no_solution_text_and_is_idempotent(tmp_path: Path) -> None:
    first = write_edition("student", ROOT / "chapters", tmp_path / "a")
    second = write_edition("student", ROOT / "chapters", tmp_path / "a")
    assert first == second and len(first) == len(list((ROOT / "chapters").rglob("*.ipynb")))
    snapshot = {p: p.read_bytes() for p in first}
    write_edition("student", ROOT / "chapters", tmp_path / "a")
    assert {p: p.read_bytes() for p in first} == snapshot
    for path in EXERCISE_NOTEBOOKS:
        original = nbformat.read(path, as_version=4)
        student = student_notebook(original)
        text = "\n".join(c.source for c in student.cells)
        assert BEGIN not in text and END not in text
        assert not [line for line in _solution_lines(original) if line in text]
        assert nbformat.writes(student_notebook(student)) == nbformat.writes(student), "student of student must not change"
        assert all("hide-input" not in c.metadata.get("tags", []) for c in solution_cells(student))
        key = key_notebook(original)
        assert [c.source for c in key.cells] == [c.source for c in original.cells]


@pytest.mark.slow
@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_student_stub_fails_its_check(path: Path) -> None:
    """Run the student edition: each exercise cell must stop at its stub or print a failing verdict."""
    student = student_notebook(nbformat.read(path, as_version=4))
    execute_notebook(student, path.parent, timeout=300)
    for cell in solution_cells(student):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        stopped_at_stub = any(e.ename == "NotImplementedError" for e in errors)
        assert stopped_at_stub or ("✗ Not yet" in text and not errors), (
            f"{path.name}: a stub did not fail cleanly (errors: {[e.ename for e in errors]}, output: {text!r})\n{cell.source}"
        )
        assert "✓ Correct" not in text


def test_an_implement_answer_that_calls_the_package_is_caught_however_it_is_imported() -> None:
    from dldna.exercises._grading import delegates_to
    from dldna.norm import LayerNorm

    def by_name(x):
        return LayerNorm(4)(x)

    alias = LayerNorm

    def by_alias(x):
        return alias(4)(x)

    def nested(x):
        def inner(y):
            return LayerNorm(4)(y)
        return inner(x)

    def honest(x):
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / x.var(-1, keepdim=True, unbiased=False).add(1e-5).sqrt()

    assert delegates_to(by_name, [LayerNorm]) == "LayerNorm"
    assert delegates_to(by_alias, [LayerNorm]) == "LayerNorm"
    assert delegates_to(nested, [LayerNorm]) == "LayerNorm"
    assert delegates_to(honest, [LayerNorm]) is None
