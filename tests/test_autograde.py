"""The autograder on the getting-started exercises: the answer key scores full marks, and a partly answered
student notebook gets exactly the exercises it answered correctly, whatever it deleted."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from dldna.exercises.autograde import checked_exercises, main
from dldna.exercises.edition import key_notebook, student_notebook

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ROOT / "chapters" / "exercises" / "getting_started.ipynb"


def answer(notebook: nbformat.NotebookNode, exercise: str, code: str) -> None:
    """Replace the code of the cell that checks ``exercise`` with ``code`` (the student's whole cell)."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and f'check("{exercise}"' in c.source)
    cell.source = code


@pytest.mark.slow
def test_scores_follow_the_checks_that_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = nbformat.read(ASSIGNMENT, as_version=4)
    expected = checked_exercises(original)
    assert len(expected) == 6 and expected[0] == "start.parameter-count"

    key = tmp_path / "key" / "getting_started.ipynb"
    key.parent.mkdir()
    nbformat.write(key_notebook(original), key)
    student = student_notebook(original)
    answer(student, "start.parameter-count", 'check("start.parameter-count", 784 * 256 + 256 + 256 * 32 + 32 + 32 * 10 + 10)')
    answer(student, "start.guessing", 'check("start.guessing", (2.0, 0.5))')
    answer(student, "start.steps-per-epoch", "steps = [1, 2, 3, 4]  # the check was deleted")
    submission = tmp_path / "alice" / "getting_started.ipynb"
    submission.parent.mkdir()
    nbformat.write(student, submission)

    grades = tmp_path / "grades.csv"
    assert main([str(key), str(submission), "--assignment", str(ASSIGNMENT), "--csv", str(grades)]) == 0
    out = capsys.readouterr().out
    assert f"{key}: 6/6 exercises passed" in out
    assert f"{submission}: 1/6 exercises passed" in out
    rows = list(csv.DictReader(grades.open()))
    assert len(rows) == 12 and [r["exercise"] for r in rows[:6]] == expected
    alice = {r["exercise"]: r for r in rows if r["submission"] == str(submission)}
    assert alice["start.parameter-count"]["passed"] == "1"
    assert alice["start.guessing"]["passed"] == "0" and "loss: 2 is too small" in alice["start.guessing"]["message"]
    assert alice["start.steps-per-epoch"]["passed"] == "0" and "never ran" in alice["start.steps-per-epoch"]["message"]
    assert alice["start.accuracy"]["message"].startswith("Not implemented yet")


def test_bad_arguments_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.ipynb")])
    assert "no such notebook" in capsys.readouterr().err
    empty = tmp_path / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), empty)
    with pytest.raises(SystemExit):
        main([str(empty)])
    assert "calls no check" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(ASSIGNMENT), "--kernel", "no-such-kernel"])
    assert "no Jupyter kernel named 'no-such-kernel'" in capsys.readouterr().err
