"""In-notebook checks for the book's exercises: ``check("optim.momentum-by-hand", answer)``.

Each topic module in this package (``dldna/exercises/<topic>.py``) registers its checks with
:func:`register`. A check receives the student's answer and returns ``(passed, message)``; the message is a
hint that helps without giving the answer away. Checks run offline and never print the reference solution.

With ``DLDNA_STRICT_CHECKS=1`` (set when the book is built and tested) a failing check raises, so a worked
solution that stops passing its own check breaks the build instead of going unnoticed. :func:`check` only
prints: :mod:`dldna.exercises.autograde` never reads what a student's notebook printed or wrote, it runs the
assignment's checks itself after the student's cells, and sets ``DLDNA_GRADING=1`` so that the notebook's own
calls do not run each check a second time. ``edition`` and ``autograde`` are the instructor's
tools and the ``_``-prefixed modules their parts; every other module here holds one topic's checks.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from dldna.book import strict

CheckFn = Callable[[Any], "tuple[bool, str]"]

GRADING_ENV = "DLDNA_GRADING"
"""Set to ``1`` in the kernels of :mod:`dldna.exercises.autograde`, which runs every check itself."""

_TOOLS = frozenset({"edition", "autograde"})


@dataclass(frozen=True)
class Exercise:
    """A registered check: its id, the function that grades an answer, and the hint shown on failure."""

    id: str
    grade: CheckFn
    hint: str


_REGISTRY: dict[str, Exercise] = {}


class ExerciseFailed(AssertionError):
    """Raised by :func:`check` in strict mode when an answer does not pass."""


def register(exercise_id: str, hint: str) -> Callable[[CheckFn], CheckFn]:
    """Decorator that registers ``grade(answer) -> (passed, message)`` under ``exercise_id``."""

    def add(grade: CheckFn) -> CheckFn:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise id {exercise_id!r} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, grade, hint)
        return grade

    return add


@functools.cache
def _load_topics() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name not in _TOOLS:
            importlib.import_module(f"{__name__}.{module.name}")


def exercises() -> dict[str, Exercise]:
    """All registered exercises by id (every topic module is imported, once, by the first call)."""
    _load_topics()
    return dict(_REGISTRY)


def grade(exercise_id: str, answer: Any) -> tuple[bool, str]:
    """Grade ``answer`` without printing: ``(passed, message)``. An answer that raises counts as not passed."""
    registry = exercises()
    if exercise_id not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise KeyError(f"no exercise {exercise_id!r}; known ids: {known}")
    exercise = registry[exercise_id]
    try:
        passed, message = exercise.grade(answer)
    except NotImplementedError:
        return False, "Not implemented yet: replace the `raise NotImplementedError()` line with your code."
    except Exception as error:  # a student's function may fail in any way; report it, never crash the check
        return False, f"Your answer raised {type(error).__name__}: {error}. {exercise.hint}"
    return bool(passed), message if passed else f"{message} Hint: {exercise.hint}".strip()


def check(exercise_id: str, answer: Any) -> bool:
    """Grade ``answer`` and print a one-line verdict with a hint when it is wrong; return whether it passed.
    While the grader runs the notebook it only says so and returns ``False``: the grader checks the answer
    itself, right after this cell."""
    if os.environ.get(GRADING_ENV) == "1":
        print(f"[{exercise_id}]: the grader checks this answer after the cell.")
        return False
    passed, message = grade(exercise_id, answer)
    print(f"{'✓ Correct' if passed else '✗ Not yet'} [{exercise_id}]: {message}")
    if not passed and strict():
        raise ExerciseFailed(f"{exercise_id}: {message}")
    return passed
