"""Grade students' exercise notebooks: run each one in isolation and run the assignment's checks on its answers.

The exercises and their checks always come from the assignment: ``--assignment``, else the book's exercise
notebook of the same name (under ``--source``, by default this repository's ``chapters``); without one the
grader refuses. Each submission runs in a process of its own, in a fresh kernel started in a temporary copy of
its folder, with one wall-clock limit for the whole notebook and a memory limit (Linux). After the cell that
answers an exercise, the grader adds a cell of its own that runs the assignment's ``check`` on the answer and
displays the verdict tagged with a secret drawn for this run; only those outputs count, so deleting a check,
redefining ``check`` or writing a fake log changes nothing. An exercise whose cell never ran counts as not
passed with the reason.

A submission that loops, ends its kernel, is not a valid notebook or is missing still gets one row per
exercise: the batch always finishes and always writes the CSV (one row per submission and exercise) and one
Markdown feedback file per submission. Exit status: 0 when every submission was graded to the end, 1 when any
could not be (the CSV's ``status`` column says which and why), 2 for a usage error.

Grading runs the students' code: do it in a container or an account that holds nothing they should not reach.
Code that patches Python or IPython themselves inside its kernel (``builtins``, ``torch``, ``sys.modules``,
IPython's input transformers or display) can still change what the grader's cells report; README's "Teaching
with it" says what remains possible.

Usage::

    python -m dldna.exercises.autograde submissions/*/optimizers.ipynb [--assignment chapters/exercises/optimizers.ipynb]
        [--csv grades.csv] [--feedback feedback] [--timeout 900] [--memory 8] [--kernel python3] [--jobs 1]
"""

from __future__ import annotations

import sys

from dldna.exercises._teach import require_teach_extra

require_teach_extra("python -m dldna.exercises.autograde", run_as_script=__name__ == "__main__")

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import nbformat  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # noqa: E402

from dldna.exercises import exercises  # noqa: E402
from dldna.exercises._assignment import CHECK_CALL, REPOSITORY_CHAPTERS, Check, assignment_checks  # noqa: E402
from dldna.exercises._in_kernel import grading_cell  # noqa: E402
from dldna.exercises._runner import Run, run_isolated  # noqa: E402

GRADED, TIME_LIMIT, KERNEL_DIED = "graded", "time limit", "kernel died"
INVALID, MISSING, UNVERIFIED, GRADER_ERROR = "invalid notebook", "missing", "unverified", "grader error"
_MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Verdict:
    """One exercise of one submission: whether it passed and the check's message (or why it has none)."""

    exercise: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Report:
    """A graded submission: its status (:data:`GRADED` when it ran to the end and every check reported), one
    verdict per exercise of the assignment, a sentence on why it was not graded to the end, and the errors its
    own cells raised."""

    submission: Path
    assignment: Path
    status: str
    verdicts: list[Verdict]
    detail: str = ""
    cell_errors: tuple[str, ...] = ()

    @property
    def graded(self) -> bool:
        return self.status == GRADED

    @property
    def score(self) -> int:
        return sum(verdict.passed for verdict in self.verdicts)

    def summary(self) -> str:
        lines = [f"{self.submission}: {self.score}/{len(self.verdicts)} exercises passed"]
        if not self.graded:
            lines.append(f"  NOT GRADED TO THE END ({self.status}): {self.detail}")
        lines += [f"  {'pass' if v.passed else 'FAIL'}  {v.exercise}: {v.message}" for v in self.verdicts]
        return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    """The cells the grader runs for one submission: the student's code cells with a grading cell after each
    answer, which check each grading cell runs (by index), and each student cell's number in the submission."""

    sources: list[str]
    grading_cells: dict[str, int]
    cell_numbers: dict[int, int]


def find_assignment(submission: Path, source: Path) -> Path:
    """The book's exercise notebook with the submission's file name, under ``source/exercises`` or ``source``;
    raises ``ValueError`` when there is none, never falling back on the submission's own checks."""
    for candidate in (source / "exercises" / submission.name, source / submission.name):
        if candidate.is_file():
            return candidate
    where = f"in {source}/exercises or {source}" if source.is_dir() else f"because {source} is not a folder"
    raise ValueError(f"found no assignment named {submission.name} {where}: name the exercise notebook it answers with --assignment")


def plan_run(submission: nbformat.NotebookNode, checks: list[Check], secret: str) -> Plan:
    """Place each check's grading cell after the submission's cell that answers it: the cell with the
    assignment cell's id, else the first that calls that check, else the end of the notebook."""
    code = [(number, cell) for number, cell in enumerate(submission.cells, start=1) if cell.cell_type == "code"]
    by_id = {cell.get("id"): number for number, cell in code if cell.get("id")}
    placed: dict[int | None, list[Check]] = {}
    for check in checks:
        number = by_id.get(check.cell_id) if check.cell_id else None
        if number is None:
            number = next((n for n, cell in code if check.exercise in CHECK_CALL.findall(cell.source)), None)
        placed.setdefault(number, []).append(check)
    sources: list[str] = []
    grading_cells: dict[str, int] = {}
    cell_numbers: dict[int, int] = {}
    for number, cell in [*code, (None, None)]:
        if cell is not None:
            cell_numbers[len(sources)] = number
            sources.append(cell.source)
        for check in placed.get(number, []):
            grading_cells[check.exercise] = len(sources)
            sources.append(grading_cell(secret, check.exercise, check.answer))
    return Plan(sources, grading_cells, cell_numbers)


def _where(plan: Plan, index: int | None) -> str:
    if index in plan.cell_numbers:
        return f"in cell {plan.cell_numbers[index]}"
    exercise = next((e for e, i in plan.grading_cells.items() if i == index), None)
    return f"in the check of {exercise}" if exercise else "before the first cell"


def _stop_sentence(run: Run, plan: Plan, timeout: float, memory_gib: float | None) -> str:
    where = _where(plan, run.stopped_at)
    if run.status == TIME_LIMIT:
        return f"The notebook ran past its {timeout:g} s limit {where}; the exercises after that point were not graded."
    if run.status == KERNEL_DIED:
        memory = f", or it needed more than the {memory_gib:g} GiB memory limit" if memory_gib else ""
        return f"The kernel stopped {where} (the code ended its process{memory}); the exercises after that point were not graded."
    return f"The grader could not run it: {run.detail}."


def verdicts_of(run: Run, plan: Plan, checks: list[Check], secret: str) -> tuple[list[Verdict], bool]:
    """One verdict per check from the grading cells' outputs that carry ``secret``, and whether every check
    that ran reported exactly one (a cell with none or several was interfered with)."""
    verdicts, trustworthy = [], True
    for check in checks:
        result = run.cells.get(plan.grading_cells[check.exercise])
        if result is None:
            verdicts.append(Verdict(check.exercise, False, "not graded: the notebook stopped before this check ran"))
            continue
        tagged = [v for v in result.verdicts if isinstance(v, dict) and v.get("secret") == secret and v.get("exercise") == check.exercise]
        if len(tagged) == 1:
            verdicts.append(Verdict(check.exercise, tagged[0].get("passed") is True, str(tagged[0].get("message", ""))[:_MAX_MESSAGE]))
            continue
        trustworthy = False
        errors = "; ".join(f"{name}: {value}" for name, value in result.errors)
        why = f"{len(tagged)} verdicts" if tagged else f"no verdict{f' ({errors})' if errors else ''}"
        verdicts.append(Verdict(check.exercise, False, f"not graded: the grader's check reported {why}"))
    return verdicts, trustworthy


def _not_run(path: Path, assignment: Path, checks: list[Check], status: str, reason: str) -> Report:
    verdicts = [Verdict(check.exercise, False, f"not graded: {reason}") for check in checks]
    return Report(path, assignment, status, verdicts, f"{reason[0].upper()}{reason[1:]}.")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def grade_submission(
    path: Path, assignment: Path, checks: list[Check], timeout: float = 900, kernel: str = "python3", memory_gib: float | None = 8
) -> Report:
    """Run one submission in isolation (see :func:`dldna.exercises._runner.run_isolated`) with a grading cell
    after each answer, and grade every check of ``assignment``. Never raises for anything the submission does."""
    if not path.is_file():
        return _not_run(path, assignment, checks, MISSING, "there is no such file")
    try:
        notebook = nbformat.read(path, as_version=4)
        secret = secrets.token_hex(16)
        plan = plan_run(notebook, checks, secret)
    except Exception as error:  # not JSON, not a notebook, cells without source: all the same to the student
        return _not_run(path, assignment, checks, INVALID, f"it is not a valid notebook ({_first_line(error)})")
    try:
        with tempfile.TemporaryDirectory(prefix="dldna-grade-", ignore_cleanup_errors=True) as scratch:
            folder = Path(scratch) / "submission"
            ignore = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__", ".git")
            shutil.copytree(path.parent, folder, symlinks=True, ignore=ignore)
            run = run_isolated(plan.sources, folder, timeout, secret, kernel, memory_gib)
    except OSError as error:  # copying its folder or starting the runner failed: report it, go on with the class
        return _not_run(path, assignment, checks, GRADER_ERROR, f"the grader could not run it ({_first_line(error)})")
    verdicts, trustworthy = verdicts_of(run, plan, checks, secret)
    cell_errors = tuple(
        f"cell {plan.cell_numbers[index]}: {name}: {value}"
        for index, result in sorted(run.cells.items())
        if index in plan.cell_numbers
        for name, value in result.errors
    )
    if run.status == "completed":
        status = GRADED if trustworthy else UNVERIFIED
        detail = "" if trustworthy else "Some of the grader's checks did not report exactly one verdict of this run: the notebook interferes with grading."
    else:
        status = run.status if run.status in (TIME_LIMIT, KERNEL_DIED) else GRADER_ERROR
        detail = _stop_sentence(run, plan, timeout, memory_gib)
    return Report(path, assignment, status, verdicts, detail, cell_errors)


def write_csv(reports: list[Report], path: Path) -> None:
    """One row per submission and exercise: ``submission, exercise, passed, message, status``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", "exercise", "passed", "message", "status"])
        for report in reports:
            for verdict in report.verdicts:
                writer.writerow([str(report.submission), verdict.exercise, int(verdict.passed), verdict.message, report.status])


def feedback_markdown(report: Report) -> str:
    """The feedback a student reads: score, why grading stopped early (if it did), each check's message, and the
    errors their cells raised."""
    lines = [
        f"# Feedback on {report.submission}",
        "",
        f"Assignment: {report.assignment.name}. Score: **{report.score}/{len(report.verdicts)}** exercises passed.",
        "",
    ]
    if not report.graded:
        lines += [f"**Not graded to the end.** {report.detail}", ""]
    lines += ["## Exercises", ""]
    lines += [f"- {'✓' if v.passed else '✗'} **{v.exercise}**: {' '.join(v.message.split())}" for v in report.verdicts]
    if report.cell_errors:
        lines += ["", "## Cells that raised an error", ""] + [f"- {' '.join(error.split())}" for error in report.cell_errors]
    return "\n".join(lines) + "\n"


def feedback_paths(submissions: list[Path], folder: Path) -> dict[Path, Path]:
    """A Markdown file under ``folder`` for each submission, mirroring their folders below the one they share
    (``submissions/alice/optimizers.ipynb`` -> ``folder/alice/optimizers.md``)."""
    resolved = {path: path.resolve() for path in submissions}
    shared = Path(os.path.commonpath([p.parent for p in resolved.values()]))
    return {path: folder / real.relative_to(shared).with_suffix(".md") for path, real in resolved.items()}


def _load_checks(assignment: Path) -> list[Check]:
    try:
        checks = assignment_checks(nbformat.read(assignment, as_version=4))
    except Exception as error:
        raise ValueError(f"{assignment} {error}" if isinstance(error, ValueError) else f"{assignment} is not a readable notebook ({error})") from None
    unknown = [check.exercise for check in checks if check.exercise not in exercises()]
    if unknown:
        raise ValueError(f"{assignment} checks exercises that dldna does not know ({', '.join(unknown)}); is it an exercise notebook of this book?")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="+", type=Path, help="students' notebooks (.ipynb)")
    parser.add_argument("--assignment", type=Path, default=None, help="the exercise notebook every submission answers")
    parser.add_argument("--source", type=Path, default=REPOSITORY_CHAPTERS, help="where to find assignments by name (default: this clone's chapters)")
    parser.add_argument("--csv", type=Path, default=Path("grades.csv"), help="the CSV of every verdict (default: grades.csv)")
    parser.add_argument("--feedback", type=Path, default=Path("feedback"), help="folder for one Markdown file per submission (default: feedback)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds the whole notebook may run (default: 900)")
    parser.add_argument("--memory", type=float, default=8, help="GiB of memory per submission, 0 for no limit (default: 8; Linux)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel that has dldna installed (default: python3)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default: 1)")
    args = parser.parse_args(argv)
    if not args.timeout >= 1:
        parser.error(f"--timeout must be at least 1 second, got {args.timeout:g}")
    if not args.memory >= 0:
        parser.error(f"--memory must be a number of GiB >= 0 (0: no limit), got {args.memory:g}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.assignment is not None and not args.assignment.is_file():
        parser.error(f"--assignment {args.assignment}: no such notebook")
    try:
        KernelSpecManager().get_kernel_spec(args.kernel)
    except NoSuchKernel:
        parser.error(f"no Jupyter kernel named {args.kernel!r}; `jupyter kernelspec list` shows the installed ones")
    submissions = list({path.resolve(): path for path in args.submissions}.values())
    try:
        assignments = {path: args.assignment or find_assignment(path, args.source) for path in submissions}
        checks = {assignment: _load_checks(assignment) for assignment in set(assignments.values())}
    except ValueError as error:
        parser.error(str(error))

    def grade(path: Path) -> Report:
        assignment = assignments[path]
        return grade_submission(path, assignment, checks[assignment], args.timeout, args.kernel, args.memory or None)

    reports = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for report in pool.map(grade, submissions):
            print(report.summary(), flush=True)
            reports.append(report)
    write_csv(reports, args.csv)
    for report, path in zip(reports, feedback_paths(submissions, args.feedback).values()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_markdown(report), encoding="utf-8")
    ungraded = [report for report in reports if not report.graded]
    print(f"wrote {args.csv} and {len(reports)} feedback files under {args.feedback}/")
    if ungraded:
        print(f"{len(ungraded)} of {len(reports)} submissions could not be graded to the end: {', '.join(str(r.submission) for r in ungraded)}")
    return 1 if ungraded else 0


if __name__ == "__main__":
    sys.exit(main())
