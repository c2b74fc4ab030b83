"""The nbgrader edition: each exercise notebook as an nbgrader source assignment, checked against nbgrader's own
metadata rules, and graded by nbgrader's own ``generate_assignment`` and ``autograde``: the answer key gets
full points and the student edition none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator

from dldna.exercises._assignment import assignment_checks
from dldna.exercises.edition import BEGIN, END, nbgrader_notebook, write_edition

ROOT = Path(__file__).resolve().parents[1]
EXERCISE_NOTEBOOKS = sorted((ROOT / "chapters" / "exercises").glob("*.ipynb"))


def nbgrader_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in notebook.cells if "nbgrader" in cell.metadata}


def test_solution_cells_lose_their_checks_to_graded_cells() -> None:
    source = new_notebook(cells=[
        new_code_cell("from dldna.exercises import check"),
        new_code_cell(
            f"import math\n{BEGIN}\nguess = (math.log(10), 0.1)\nsteps = [1875, 469, 60, 59]\n{END}\n"
            'check("start.guessing", guess)\ncheck("start.steps-per-epoch",\n      steps)',
            metadata={"tags": ["solution", "hide-input"]},
        ),
        new_markdown_cell("Because the loss is flat there.", metadata={"tags": ["solution"]}),
    ])  # fmt: skip
    exported = nbgrader_notebook(source)
    MetadataValidator().validate_nb(exported)
    cells = nbgrader_cells(exported)
    assert list(cells) == ["start_guessing-answer", "start_guessing", "start_steps-per-epoch", f"written-{source.cells[2].id}"]
    answer = cells["start_guessing-answer"]
    assert answer.source == f"import math\n{BEGIN}\nguess = (math.log(10), 0.1)\nsteps = [1875, 469, 60, 59]\n{END}"
    assert answer.metadata["nbgrader"]["solution"] and not answer.metadata["nbgrader"]["grade"]
    assert answer.metadata["tags"] == ["solution"], "unfolded"
    graded = cells["start_steps-per-epoch"]
    assert graded.source == 'from dldna.exercises import check\n\nassert check("start.steps-per-epoch", steps)'
    assert {key: graded.metadata["nbgrader"][key] for key in ("grade", "locked", "points", "solution")} == {
        "grade": True, "locked": True, "points": 1, "solution": False
    }  # fmt: skip
    written = cells[f"written-{source.cells[2].id}"].metadata["nbgrader"]
    assert written["solution"] and written["grade"] and written["points"] == 1, "a written answer is graded by hand"
    assert exported.cells[0] == source.cells[0]


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_notebook_exports_one_point_per_check(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    exported = nbgrader_notebook(notebook)
    MetadataValidator().validate_nb(exported)
    graded = [cell for cell in exported.cells if cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata["nbgrader"]["solution"]]
    assert [cell.source.rsplit("assert check(", 1)[1].split(",")[0].strip('"') for cell in graded] == [c.exercise for c in assignment_checks(notebook)]
    assert all(cell.metadata["nbgrader"]["points"] == 1 and BEGIN not in cell.source for cell in graded)
    solutions = [cell for cell in exported.cells if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")]
    assert solutions and all(BEGIN in cell.source and "check(" not in cell.source for cell in solutions)


def test_the_edition_tool_refuses_a_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dldna.exercises.edition import main

    for kind in ("student", "nbgrader"):
        with pytest.raises(SystemExit) as stop:
            main([kind, "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
        assert stop.value.code == 2
        assert "the source folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["nbgrader", "--source", str(tmp_path), "--out", str(tmp_path / "out")])
    assert f"found no notebooks under {tmp_path / 'exercises'}" in capsys.readouterr().err


def nbgrader(course: Path, *arguments: str) -> None:
    """Run nbgrader in ``course`` with this environment's bin first on PATH (nbgrader calls ``alembic``)."""
    bin_folder = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}", "JUPYTER_CONFIG_DIR": str(course / ".jupyter")}
    result = subprocess.run([str(bin_folder / "nbgrader"), *arguments], cwd=course, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_nbgrader_grades_the_key_full_and_the_student_edition_zero(tmp_path: Path) -> None:
    course = tmp_path / "course"
    written = write_edition("nbgrader", ROOT / "chapters", course)
    assert (course / "nbgrader_config.py").is_file() and len(written) == len(EXERCISE_NOTEBOOKS)
    nbgrader(course, "generate_assignment", "*", "--force")
    notebooks = {path.stem: nbformat.read(path, as_version=4) for path in EXERCISE_NOTEBOOKS}
    expected = {name: len(assignment_checks(notebook)) for name, notebook in notebooks.items()}
    # A written answer (a Markdown cell tagged solution) is a manually graded point: autograde leaves it at zero.
    written = {name: sum(cell.cell_type == "markdown" and "solution" in cell.metadata.get("tags", []) for cell in notebook.cells)
               for name, notebook in notebooks.items()}
    for name in expected:
        release = (course / "release" / name / f"{name}.ipynb").read_text()
        assert BEGIN not in release and "raise NotImplementedError()" in release
        for student, version in (("key", course / "source"), ("student", course / "release")):
            target = course / "submitted" / student / name / f"{name}.ipynb"
            target.parent.mkdir(parents=True)
            target.write_text((version / name / f"{name}.ipynb").read_text())
    nbgrader(course, "autograde", "*", "--create")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {(a.name, s.student.id): (s.score, s.max_score) for a in gradebook.assignments for s in a.submissions}
    assert {name: scores[name, "key"] for name in expected} == {name: (points, points + written[name]) for name, points in expected.items()}
    assert {name: scores[name, "student"] for name in expected} == {name: (0, points + written[name]) for name, points in expected.items()}
