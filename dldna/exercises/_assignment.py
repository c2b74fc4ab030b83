"""What an exercise notebook asks: its ``check("<id>", <answer>)`` calls, read from the cells' source.

The grader runs these calls itself after the student's cells, and the nbgrader export moves them into graded
cells of their own, so each must be a statement of its own at the top level of its cell: then "the answer
after this cell ran" is well defined and can be evaluated again, outside the student's code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager

REPOSITORY_CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
"""The book's notebooks in the clone this package runs from: the tools' default source of assignments."""

CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")
"""A ``check("<id>", ...)`` call in source text (found even where the source does not parse)."""


@dataclass(frozen=True)
class CheckCall:
    """One ``check(exercise, answer)`` statement of a cell: the id, the answer's source, and the statement's first
    and last line in the cell (1-based)."""

    exercise: str
    answer: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class Check:
    """A check an assignment asks for: the exercise id, the answer expression, and the cell that calls it (its
    position among all cells and its nbformat id, if it has one)."""

    exercise: str
    answer: str
    cell_index: int
    cell_id: str | None


def _is_check_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    function = node.func
    named_check = (isinstance(function, ast.Name) and function.id == "check") or (
        isinstance(function, ast.Attribute) and function.attr == "check"
    )
    return named_check and bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)


def check_calls(source: str) -> list[CheckCall]:
    """The ``check`` statements of one code cell, in order. Raises ``ValueError`` for a ``check("<id>", ...)``
    call the grader could not run again on its own: one inside a block, an expression or a cell magic, one
    without exactly the id and the answer as arguments, or any in a cell that does not parse."""
    python = TransformerManager().transform_cell(source)
    try:
        tree = ast.parse(python)
    except SyntaxError as error:
        if CHECK_CALL.search(source):
            raise ValueError(f"a cell that calls check(...) does not parse ({error.msg}, line {error.lineno}):\n{source}") from None
        return []
    calls = []
    for statement in tree.body:
        if isinstance(statement, ast.Expr) and _is_check_call(statement.value):
            call = statement.value
            exercise = call.args[0].value
            if len(call.args) != 2 or call.keywords:
                raise ValueError(f'check("{exercise}", ...) must pass exactly the exercise id and the answer')
            answer = ast.get_source_segment(python, call.args[1])
            calls.append(CheckCall(exercise, answer, statement.lineno, statement.end_lineno))
    top_level = [call.exercise for call in calls]
    everywhere = [node.args[0].value for node in ast.walk(tree) if _is_check_call(node)]
    hidden = [exercise for exercise in CHECK_CALL.findall(source) if exercise not in top_level] + [
        exercise for exercise in everywhere if exercise not in top_level
    ]
    if hidden:
        raise ValueError(
            f'check("{hidden[0]}", ...) must be a statement of its own at the top level of its cell (not inside a '
            f"block, an expression or a cell magic), so that it can be run again after the cell:\n{source}"
        )
    if python.splitlines() != source.splitlines() and any(
        python.splitlines()[call.first_line - 1 : call.last_line] != source.splitlines()[call.first_line - 1 : call.last_line]
        for call in calls
    ):
        raise ValueError(f"a cell's IPython magics move its check(...) lines; put the check in a cell without magics:\n{source}")
    return calls


def assignment_checks(notebook: Any) -> list[Check]:
    """Every check an assignment notebook calls, in order. Raises ``ValueError`` when it calls none, calls one
    exercise twice, or calls a check the grader cannot run again (see :func:`check_calls`)."""
    checks: list[Check] = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for call in check_calls(cell.source):
            checks.append(Check(call.exercise, call.answer, index, cell.get("id")))
    if not checks:
        raise ValueError("calls no check(...): nothing to grade")
    seen: set[str] = set()
    for check in checks:
        if check.exercise in seen:
            raise ValueError(f'checks exercise "{check.exercise}" twice; keep one check(...) call per exercise')
        seen.add(check.exercise)
    return checks
