"""Grade students' exercise notebooks: run each one and record which checks pass.

Each submission is executed from top to bottom in a fresh kernel (a cell that raises does not stop the run),
and every ``check(...)`` call reports its verdict to a log that the grader reads back. An exercise counts as
passed when its last check passed; one whose check never ran (the cell stopped at an error or the call was
removed) counts as not passed. The exercises expected of a submission are those of the assignment, the
exercise notebook of the same name under ``--source`` unless ``--assignment`` names one, so deleting a check
cannot shrink the total.

Grading runs the students' code: do it in a container or another account that holds nothing they should not
reach. The verdicts are recorded inside the student's kernel, so, as with any autograder that runs there,
they are only as trustworthy as the notebook's restraint in patching ``dldna`` itself.

Usage::

    python -m dldna.exercises.autograde submissions/*.ipynb [--assignment chapters/exercises/optimizers.ipynb]
                                        [--source chapters] [--csv grades.csv] [--timeout 600] [--kernel python3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient

from dldna.exercises import GRADE_LOG_ENV

CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class Verdict:
    """One exercise of one submission: whether it passed and the check's message (or why it has none)."""

    exercise: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Report:
    """A graded submission."""

    submission: Path
    assignment: Path | None
    verdicts: list[Verdict]

    @property
    def score(self) -> int:
        return sum(verdict.passed for verdict in self.verdicts)

    def summary(self) -> str:
        lines = [f"{self.submission}: {self.score}/{len(self.verdicts)} exercises passed"]
        lines += [f"  {'pass' if v.passed else 'FAIL'}  {v.exercise}: {v.message}" for v in self.verdicts]
        return "\n".join(lines)


def checked_exercises(notebook: nbformat.NotebookNode) -> list[str]:
    """The exercise ids a notebook's code cells pass to ``check``, in order of first appearance."""
    found = [match for cell in notebook.cells if cell.cell_type == "code" for match in CHECK_CALL.findall(cell.source)]
    return list(dict.fromkeys(found))


def find_assignment(submission: Path, source: Path) -> Path | None:
    """The book's notebook with the submission's file name, under ``source/exercises`` or ``source``."""
    for candidate in (source / "exercises" / submission.name, source / submission.name):
        if candidate.is_file():
            return candidate
    return None


def execute_notebook(notebook: nbformat.NotebookNode, folder: Path, timeout: int, kernel: str = "python3", **env: str) -> nbformat.NotebookNode:
    """Run every cell of ``notebook`` in a fresh ``kernel`` started in ``folder``, going on past cells that
    raise, with checks that report instead of raising and no progress bars (``env`` adds variables); returns
    ``notebook`` with its outputs."""
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name=kernel, allow_errors=True, resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env={**os.environ, "DLDNA_STRICT_CHECKS": "0", "DLDNA_PROGRESS": "0", "MPLBACKEND": "Agg", **env})
    return notebook


def run_submission(path: Path, timeout: int, kernel: str = "python3") -> list[dict[str, object]]:
    """Execute the notebook at ``path`` in a fresh ``kernel`` (errors do not stop it) and return the verdicts
    its ``check`` calls logged, in the order they ran."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "checks.jsonl"
        log.touch()
        execute_notebook(nbformat.read(path, as_version=4), path.parent.resolve(), timeout, kernel, **{GRADE_LOG_ENV: str(log)})
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def grade_submission(
    path: Path, assignment: Path | None = None, source: Path = Path("chapters"), timeout: int = 600, kernel: str = "python3"
) -> Report:
    """Run one submission in ``kernel`` and grade every exercise of its assignment (``assignment``, else the
    book's notebook of the same name under ``source``, else the checks found in the submission itself)."""
    assignment = assignment or find_assignment(path, source)
    expected_from = assignment if assignment is not None else path
    expected = checked_exercises(nbformat.read(expected_from, as_version=4))
    if not expected:
        raise ValueError(f"{expected_from} calls no check(...): nothing to grade")
    last: dict[str, dict[str, object]] = {}
    for record in run_submission(path, timeout, kernel):
        last[str(record["id"])] = record
    verdicts = [
        Verdict(exercise, bool(last[exercise]["passed"]), str(last[exercise]["message"]))
        if exercise in last
        else Verdict(exercise, False, "its check never ran (the cell stopped at an error, or the check was removed)")
        for exercise in expected
    ]
    return Report(path, assignment, verdicts)


def write_csv(reports: list[Report], path: Path) -> None:
    """One row per submission and exercise: ``submission, exercise, passed, message``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", "exercise", "passed", "message"])
        for report in reports:
            for verdict in report.verdicts:
                writer.writerow([str(report.submission), verdict.exercise, int(verdict.passed), verdict.message])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="+", type=Path, help="students' notebooks (.ipynb)")
    parser.add_argument("--assignment", type=Path, default=None, help="the exercise notebook every submission answers")
    parser.add_argument("--source", type=Path, default=Path("chapters"), help="where the book's notebooks are")
    parser.add_argument("--csv", type=Path, default=None, help="write every verdict to this CSV file")
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel that has dldna installed (default: python3)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in [*args.submissions, *([args.assignment] if args.assignment else [])] if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.timeout < 1:
        parser.error("--timeout must be >= 1")
    reports = []
    for submission in args.submissions:
        try:
            report = grade_submission(submission, args.assignment, args.source, args.timeout, args.kernel)
        except ValueError as error:
            parser.error(str(error))
        except NoSuchKernel:
            parser.error(f"no Jupyter kernel named {args.kernel!r}; `jupyter kernelspec list` shows the installed ones")
        print(report.summary(), flush=True)
        reports.append(report)
    if args.csv is not None:
        write_csv(reports, args.csv)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
