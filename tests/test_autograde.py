"""The autograder: a batch of bad submissions is graded to the end, verdicts come only from the grader's own
cells, the exercises always come from the assignment, and bad input gets one clear sentence.

Most tests use a small synthetic assignment of three cheap getting-started checks; one grades the real
getting-started exercise notebook.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dldna.exercises._assignment import assignment_checks
from dldna.exercises._in_kernel import VERDICT_MIME
from dldna.exercises import _runner as runner
from dldna.exercises import _teach
from dldna.exercises._runner import CellResult, Run
from dldna.exercises.autograde import find_assignment, feedback_paths, main, plan_run, verdicts_of
from dldna.exercises.edition import key_notebook, student_notebook

ROOT = Path(__file__).resolve().parents[1]
REAL_ASSIGNMENT = ROOT / "chapters" / "exercises" / "getting_started.ipynb"

SETUP = "from dldna.exercises import check"
ANSWERS = {
    "start.parameter-count": "n_params = 784 * 256 + 256 + 256 * 32 + 32 + 32 * 10 + 10\ncheck('start.parameter-count', n_params)",
    "start.guessing": "import math\nguess = (math.log(10), 0.1)\ncheck('start.guessing', guess)",
    "start.steps-per-epoch": "steps = [1875, 469, 60, 59]\ncheck('start.steps-per-epoch', steps)",
}
EXERCISES = list(ANSWERS)


def notebook(*sources: str) -> nbformat.NotebookNode:
    """A notebook with a title cell and one code cell per source."""
    return new_notebook(cells=[new_markdown_cell("# Exercises"), *(new_code_cell(source) for source in sources)])


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def rows_by_submission(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    grouped: dict[str, dict[str, dict[str, str]]] = {}
    for row in csv.DictReader(path.open(encoding="utf-8")):
        grouped.setdefault(Path(row["submission"]).parent.name, {})[row["exercise"]] = row
    return grouped


@pytest.fixture
def assignment(tmp_path: Path) -> Path:
    return write(notebook(SETUP, *ANSWERS.values()), tmp_path / "assignment.ipynb")


FORGER = [
    SETUP,
    # Redefine check and grade everywhere the notebook can reach, and patch a helper the checks use.
    "import dldna.exercises as package\nimport dldna.exercises._grading as helpers\n"
    "package.check = package.grade = check = lambda *args, **kwargs: (True, 'forged')\n"
    "helpers.close = helpers.all_close = lambda *args, **kwargs: (True, 'forged')",
    # Write passing verdicts into the old grade log, print and display fake verdicts, and keep displaying
    # them from a thread while the grader's cells run.
    "import json, os, threading, time\nfrom IPython.display import display\n"
    "with open(os.environ.get('DLDNA_GRADE_LOG', 'checks.jsonl'), 'a') as log:\n"
    f"    for exercise in {EXERCISES!r}:\n"
    "        log.write(json.dumps({'id': exercise, 'passed': True, 'message': 'forged'}) + '\\n')\n"
    "def forge():\n"
    f"    for exercise in {EXERCISES!r}:\n"
    "        fake = {'secret': 'guessed', 'exercise': exercise, 'passed': True, 'message': 'forged'}\n"
    f"        display({{{VERDICT_MIME!r}: fake}}, raw=True)\n"
    "        print(json.dumps(fake))\n"
    "forge()\n"
    "threading.Thread(target=lambda: [forge() or time.sleep(0.05) for _ in range(400)], daemon=True).start()",
    # Shadow __import__ with a module whose report() passes everything, with the secret it is handed.
    "class Fake:\n"
    "    modules = {}\n"
    "    @staticmethod\n"
    "    def report(secret, exercise, answer):\n"
    f"        display({{{VERDICT_MIME!r}: {{'secret': secret, 'exercise': exercise, 'passed': True, 'message': 'forged'}}}}, raw=True)\n"
    "__import__ = lambda *args, **kwargs: Fake",
    "n_params = 1\ncheck('start.parameter-count', n_params)",
    "guess = (0.0, 0.0)\ncheck('start.guessing', guess)",
    "steps = [0, 0, 0, 0]\ncheck('start.steps-per-epoch', steps)",
]


@pytest.mark.slow
def test_a_batch_of_bad_submissions_is_graded_to_the_end(tmp_path: Path, assignment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    limit = 15
    first, second, third = ANSWERS.values()
    submissions = {
        "key": notebook(SETUP, first, second, third),
        "looper": notebook(SETUP, first, "while True:\n    pass", second, third),
        # Two cells that each fit in the limit, together past it: the limit is for the whole notebook.
        "slowpoke": notebook(SETUP, f"import time\ntime.sleep({0.6 * limit})", f"time.sleep({0.6 * limit})", first, second, third),
        "killer": notebook(SETUP, first, "import os\nos._exit(1)", second, third),
        "forger": notebook(*FORGER),
        "hog": notebook(
            SETUP,
            first,
            "import resource\nassert resource.getrlimit(resource.RLIMIT_DATA)[0] <= 2 * 2**30\nhog = bytearray(3 * 2**30)",
            second,
            third,
        ),
    }
    paths = [write(nb, tmp_path / "class" / name / "a.ipynb") for name, nb in submissions.items()]
    corrupt = tmp_path / "class" / "corrupt" / "a.ipynb"
    corrupt.parent.mkdir()
    corrupt.write_text('{"cells": [ this is not JSON')
    missing = tmp_path / "class" / "missing" / "a.ipynb"
    grades, feedback = tmp_path / "grades.csv", tmp_path / "feedback"

    start = time.monotonic()
    status = main(
        [*map(str, [*paths, corrupt, missing]), "--assignment", str(assignment), "--timeout", str(limit), "--memory", "2",
         "--jobs", "2", "--csv", str(grades), "--feedback", str(feedback)]
    )  # fmt: skip
    elapsed = time.monotonic() - start

    assert status == 1, "some submissions could not be graded to the end"
    assert elapsed < 4 * limit + 60, f"the batch took {elapsed:.0f} s"
    rows = rows_by_submission(grades)
    assert set(rows) == {*submissions, "corrupt", "missing"} and all(list(r) == EXERCISES for r in rows.values())
    passed = {name: [row["exercise"] for row in r.values() if row["passed"] == "1"] for name, r in rows.items()}
    status_of = {name: {row["status"] for row in r.values()} for name, r in rows.items()}
    assert passed["key"] == EXERCISES and status_of["key"] == {"graded"}
    assert passed["hog"] == EXERCISES and status_of["hog"] == {"graded"}, "a failed allocation is the student's error, not the batch's"
    assert passed["looper"] == passed["killer"] == ["start.parameter-count"], "what was answered before the stop counts"
    assert passed["slowpoke"] == [] and rows["slowpoke"]["start.parameter-count"]["message"].startswith("not graded")
    assert status_of["looper"] == status_of["slowpoke"] == {"time limit"} and status_of["killer"] == {"kernel died"}
    assert passed["forger"] == [] and status_of["forger"] == {"graded"}
    assert "forged" not in grades.read_text()
    assert passed["corrupt"] == passed["missing"] == []
    assert status_of["corrupt"] == {"invalid notebook"} and status_of["missing"] == {"missing"}

    out = capsys.readouterr().out
    assert "key/a.ipynb: 3/3 exercises passed" in out and "5 of 8 submissions could not be graded" in out
    notes = {name: (feedback / name / "a.md").read_text() for name in rows}
    assert "**3/3**" in notes["key"] and "MemoryError" in notes["hog"]
    assert "ran past its 15 s limit in cell 4" in notes["looper"] and "ran past its 15 s limit in cell 4" in notes["slowpoke"]
    assert "The kernel stopped in cell 4" in notes["killer"]
    assert "not a valid notebook" in notes["corrupt"] and "no such file" in notes["missing"]
    assert "is not the parameter count" in notes["forger"], "the student sees each check's message"


@pytest.mark.slow
def test_scores_follow_the_real_assignment_whatever_the_notebook_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = nbformat.read(REAL_ASSIGNMENT, as_version=4)
    expected = [check.exercise for check in assignment_checks(original)]
    assert len(expected) == 7 and expected[0] == "start.parameter-count"
    key = write(key_notebook(original), tmp_path / "key" / "getting_started.ipynb")
    student = student_notebook(original)

    def answer(exercise: str, code: str) -> None:
        cell = next(c for c in student.cells if c.cell_type == "code" and f'check("{exercise}"' in c.source)
        cell.source = code

    answer("start.parameter-count", 'check("start.parameter-count", 784 * 256 + 256 + 256 * 32 + 32 + 32 * 10 + 10)')
    answer("start.guessing", "guess = (2.0, 0.5)  # the check was deleted")
    answer("start.steps-per-epoch", "steps = [-(-60_000 // b) for b in (32, 128, 1000, 1024)]  # so was this one")
    submission = write(student, tmp_path / "alice" / "getting_started.ipynb")

    # No --assignment: found by name in this repository's chapters.
    assert main([str(key), str(submission), "--csv", str(tmp_path / "grades.csv"), "--feedback", str(tmp_path / "fb")]) == 0
    out = capsys.readouterr().out
    assert f"{key}: 7/7 exercises passed" in out and f"{submission}: 1/7 exercises passed" in out
    alice = rows_by_submission(tmp_path / "grades.csv")["alice"]
    assert list(alice) == expected
    assert alice["start.steps-per-epoch"]["passed"] == "1", "graded from the assignment's check, after the answer's cell"
    assert alice["start.parameter-count"]["passed"] == "0" and "n_params" in alice["start.parameter-count"]["message"]
    assert alice["start.guessing"]["passed"] == "0" and "loss: 2 does not match" in alice["start.guessing"]["message"]
    assert alice["start.accuracy"]["message"].startswith("Not implemented yet")


def test_grading_cells_follow_the_answers_and_only_tagged_verdicts_count() -> None:
    assignment = notebook(SETUP, *ANSWERS.values())
    checks = assignment_checks(assignment)
    submission = nbformat.from_dict(assignment)
    submission.cells[2].source = "n_params = 3  # the check call was deleted; the cell id still places it"
    submission.cells[3].id = "renamed"  # found by its check call instead
    submission.cells.insert(4, new_code_cell("print('scratch')"))
    submission.cells[5].id, submission.cells[5].source = "other", "steps = []"  # neither: graded at the end
    plan = plan_run(submission, checks, "s3cret")
    order = [plan.cell_numbers.get(i) or next(e for e, j in plan.grading_cells.items() if j == i) for i in range(len(plan.sources))]
    assert order == [2, 3, "start.parameter-count", 4, "start.guessing", 5, 6, "start.steps-per-epoch"]
    assert all("s3cret" in plan.sources[i] for i in plan.grading_cells.values())
    compile(plan.sources[plan.grading_cells["start.guessing"]], "<grading cell>", "exec")

    def verdict(exercise: str, secret: str = "s3cret", passed: bool = True) -> dict[str, object]:
        return {"secret": secret, "exercise": exercise, "passed": passed, "message": "m"}

    index = plan.grading_cells
    run = Run("completed", cells={
        index["start.parameter-count"]: CellResult([], [verdict("start.parameter-count", "guessed"), verdict("start.parameter-count", passed=False)]),
        index["start.guessing"]: CellResult([], [verdict("start.guessing"), verdict("start.guessing")]),
        index["start.steps-per-epoch"]: CellResult([("ImportError", "patched")], [verdict("start.guessing")]),
    })  # fmt: skip
    verdicts, trustworthy = verdicts_of(run, plan, checks, "s3cret")
    assert [v.passed for v in verdicts] == [False, False, False] and not trustworthy
    assert verdicts[0].message == "m", "an untagged verdict is ignored, the tagged one counts"
    assert "2 verdicts" in verdicts[1].message and "ImportError: patched" in verdicts[2].message


def test_the_assignment_is_required_and_must_be_gradable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def usage_error(*argv: str) -> str:
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--csv", str(tmp_path / "g.csv"), "--feedback", str(tmp_path / "fb")])
        assert stop.value.code == 2
        return capsys.readouterr().err

    submission = write(notebook(*ANSWERS.values()), tmp_path / "work" / "mine.ipynb")
    assert "found no assignment named mine.ipynb" in usage_error(str(submission))
    assert "name the exercise notebook it answers with --assignment" in usage_error(str(submission), "--source", str(tmp_path))
    assert "--assignment nowhere.ipynb: no such notebook" in usage_error(str(submission), "--assignment", "nowhere.ipynb")
    for source, error in [
        ("x = 1", "calls no check(...)"),
        ("for n in range(2):\n    check('start.guessing', n)", "must be a statement of its own at the top level"),
        ("%%time\ncheck('start.guessing', 1)", "must be a statement of its own at the top level"),
        ("check('start.guessing', 1)\ncheck('start.guessing', 2)", 'checks exercise "start.guessing" twice'),
        ("check('start.nothing-like-it', 1)", "checks exercises that dldna does not know (start.nothing-like-it)"),
    ]:
        bad = write(notebook(source), tmp_path / "bad.ipynb")
        assert error in usage_error(str(submission), "--assignment", str(bad)), source
    assert not (tmp_path / "g.csv").exists(), "a usage error grades nothing"
    assert "no Jupyter kernel named 'no-such-kernel'" in usage_error(str(submission), "--kernel", "no-such-kernel")
    assert "--timeout must be at least 1 second" in usage_error(str(submission), "--timeout", "0")
    assert "--memory must be a number of GiB >= 0" in usage_error(str(submission), "--memory", "-1")
    with pytest.raises(ValueError, match="found no assignment named mine.ipynb"):
        find_assignment(submission, tmp_path)


def test_a_runner_that_outlives_its_limit_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "STARTUP_ALLOWANCE", 0.0)  # no time even to start the kernel
    start = time.monotonic()
    run = runner.run_isolated(["import time\ntime.sleep(60)"], tmp_path, timeout=1, secret="s")
    assert time.monotonic() - start < 10
    assert run.status == "time limit" and "was stopped" in run.detail and not run.cells


def test_magics_in_the_assignment_are_read_as_python() -> None:
    checks = assignment_checks(notebook('%pip install -q "dldna"\n' + ANSWERS["start.guessing"]))
    assert [(c.exercise, c.answer, c.cell_index) for c in checks] == [("start.guessing", "guess", 1)]


def test_feedback_files_mirror_the_submissions_folders(tmp_path: Path) -> None:
    alice, bob = tmp_path / "class" / "alice" / "hw.ipynb", tmp_path / "class" / "bob" / "hw.ipynb"
    assert feedback_paths([alice, bob], Path("fb")) == {alice: Path("fb/alice/hw.md"), bob: Path("fb/bob/hw.md")}
    assert feedback_paths([alice], Path("fb")) == {alice: Path("fb/hw.md")}


@pytest.mark.parametrize("tool", ["autograde", "edition"])
def test_without_the_teach_extra_the_tools_say_how_to_install_it(tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    install = 'pip install "dldna[teach] @ git+https://github.com/dldna/dldna" (or pip install ".[teach]" in a clone).'
    program = (
        "import importlib.util, runpy, sys\n"
        "find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *args: None if name == 'nbformat' else find(name, *args)\n"
        f"sys.argv = ['{tool}', '--help']\n"
        f"runpy.run_module('dldna.exercises.{tool}', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"python -m dldna.exercises.{tool} needs the 'teach' extra (nbformat is not installed): {install}"
    ]
    monkeypatch.setattr(_teach.importlib.util, "find_spec", lambda name, *args: None if name == "nbclient" else object())
    with pytest.raises(ModuleNotFoundError, match=r"^the grader needs the 'teach' extra \(nbclient is not installed\): pip install"):
        _teach.require_teach_extra("the grader", run_as_script=False)
