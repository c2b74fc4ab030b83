"""Small grading helpers shared by the topic modules: numeric closeness with a message that never shows the
expected value or the direction to move in (a hint names the idea to reconsider instead), and a check that an
"implement" answer does not hand the work to the package's own implementation."""

from __future__ import annotations

import math
from types import CodeType
from typing import Any, Callable, Sequence

import torch


def close(answer: Any, expected: float, rel: float = 1e-3, abs_tol: float = 1e-6) -> tuple[bool, str]:
    """Is ``answer`` a number within ``rel`` (relative) or ``abs_tol`` of ``expected``?"""
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return False, f"Expected a number, got {type(answer).__name__}."
    if not math.isfinite(value):
        return False, "Your answer is not a finite number."
    if math.isclose(value, expected, rel_tol=rel, abs_tol=abs_tol):
        return True, "matches."
    return False, f"{value:.6g} does not match."


def one_of(
    answer: Any,
    choices: Sequence[Any],
    solution: Callable[[], Any],
    *,
    right: str,
    below: str,
    above: str | None = None,
    name: str = "answer",
) -> tuple[bool, str]:
    """Grade an answer that must be one of the ``choices`` the exercise lists. Outside them, say so; equal to
    ``solution()`` (computed only then), pass with ``right``; otherwise fail with ``below`` when it is smaller
    than the solution (or when no choice qualifies, a solution of ``None``) and with ``above`` (default
    ``below``) when larger. The messages never show the solution."""
    if answer not in choices:
        return False, f"The {name} should be one of {tuple(choices)}."
    expected = solution()
    if answer == expected:
        return True, right
    if expected is None or answer < expected:
        return False, below
    return False, below if above is None else above


def letter_choice(answer: Any, choices: Sequence[str], correct: str, *, right: str, wrong: str) -> tuple[bool, str]:
    """Grade the letter of a multiple-choice question with :func:`one_of`: case and surrounding spaces do not
    matter, and a wrong letter gets ``wrong``, never the right one."""
    return one_of(str(answer).strip().lower(), choices, lambda: correct, right=right, below=wrong, name="letter")


def _names_used(code: CodeType) -> set[str]:
    """Every global, attribute and free-variable name ``code`` and the functions nested in it refer to."""
    names = set(code.co_names) | set(code.co_freevars)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _names_used(constant)
    return names


def delegates_to(function: Callable[..., Any], implementations: Sequence[Callable[..., Any]]) -> str | None:
    """The name of the first of ``implementations`` that ``function`` calls, or ``None``: an "implement" exercise
    asks for the computation itself, so an answer that calls the package's version of it does not pass. A call
    is found by name (``filter_normalize(...)``, ``L.filter_normalize(...)``) or through any global or closure
    name bound to the same object (``from dldna.landscape import filter_normalize as f``)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    names = _names_used(code)
    bound = {**getattr(function, "__globals__", {}), **dict(zip(code.co_freevars, (c.cell_contents for c in function.__closure__ or ())))}
    for implementation in implementations:
        if implementation.__name__ in names or any(bound.get(name) is implementation for name in names):
            return implementation.__name__
    return None


def all_close(answer: Any, expected: Sequence[float], rel: float = 1e-3, abs_tol: float = 1e-6) -> tuple[bool, str]:
    """Is ``answer`` a sequence of numbers, each close to the matching entry of ``expected``?"""
    try:
        values = [float(v) for v in torch.as_tensor(answer, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        return False, "Expected a list of numbers."
    if len(values) != len(expected):
        return False, f"Expected {len(expected)} numbers, got {len(values)}."
    for i, (value, target) in enumerate(zip(values, expected)):
        ok, message = close(value, target, rel, abs_tol)
        if not ok:
            return False, f"Entry {i} ({value:.6g}) is off: {message}"
    return True, f"all {len(values)} values match."


def same_tensors(actual: Sequence[torch.Tensor], expected: Sequence[torch.Tensor], atol: float = 1e-6) -> tuple[bool, str]:
    """Do two lists of tensors agree elementwise? Reports the first mismatch's largest difference."""
    if len(actual) != len(expected):
        return False, f"Expected {len(expected)} tensors, got {len(actual)}."
    for i, (a, e) in enumerate(zip(actual, expected)):
        a = torch.as_tensor(a)
        if a.shape != e.shape:
            return False, f"Tensor {i} has shape {tuple(a.shape)}, expected {tuple(e.shape)}."
        gap = (a.double() - e.double()).abs().max().item()
        if not gap <= atol:
            return False, f"Tensor {i} differs by up to {gap:.3g}."
    return True, "all tensors match."
