"""What the grader runs inside a student's kernel: one cell per check, placed after the cell that answers it.

Each cell first drops every ``dldna.exercises`` module the notebook may have patched (for instance a redefined
``dldna.exercises.grade``) and imports them again from disk, then grades the answer expression of the
*assignment* and displays the verdict as one output of its own MIME type, tagged with a secret drawn for this
run. The grader reads verdicts only from these cells' outputs and only with the secret, so nothing the
notebook prints, displays or writes to a file counts. This module imports nothing heavy: it runs in the
student's kernel.
"""

from __future__ import annotations

from typing import Any, Callable

VERDICT_MIME = "application/vnd.dldna.verdict+json"

_FRESH_IMPORT = (
    '[__import__("sys").modules.pop(name) for name in list(__import__("sys").modules) '
    'if name == "dldna.exercises" or name.startswith("dldna.exercises.")]'
)


def grading_cell(secret: str, exercise: str, answer: str) -> str:
    """The source of the cell that grades ``answer`` (the assignment's expression) for ``exercise``."""
    return (
        f"# Added by the grader: the assignment's check of {exercise}, run on this notebook's answer.\n"
        f"{_FRESH_IMPORT}\n"
        f'__import__("dldna.exercises._in_kernel", fromlist=["report"]).report({secret!r}, {exercise!r}, lambda: (\n'
        f"{answer}\n"
        "))"
    )


def report(secret: str, exercise: str, answer: Callable[[], Any]) -> None:
    """Grade ``answer()`` for ``exercise`` and display the verdict, tagged with ``secret``. A name the answer
    needs that the notebook never defined, and an answer that raises, count as not passed."""
    from IPython.display import display

    from dldna.exercises import grade

    try:
        value = answer()
    except NameError as error:
        passed, message = False, f"{error}: the cell that defines it did not run to the end, or the name was changed."
    except (Exception, SystemExit) as error:
        passed, message = False, f"Computing your answer raised {type(error).__name__}: {error}"
    else:
        try:
            passed, message = grade(exercise, value)
        except SystemExit as error:
            passed, message = False, f"Your answer called exit ({error})."
    display({VERDICT_MIME: {"secret": secret, "exercise": exercise, "passed": bool(passed), "message": str(message)}}, raw=True)
