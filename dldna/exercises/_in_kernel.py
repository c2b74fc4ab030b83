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


def grading_cell(secret: str, exercise: str, answer: str) -> str:
    """The source of the cell that grades ``answer`` (the assignment's expression) for ``exercise``. It uses
    ``import`` statements and syntax only, no builtin or global name the notebook could have redefined (such
    as ``__import__`` or ``list``), and binds only names that start with ``_dldna_``."""
    return (
        f"# Added by the grader: the assignment's check of {exercise}, run on this notebook's answer.\n"
        "import sys as _dldna_sys\n"
        "for _dldna_name in [*_dldna_sys.modules]:\n"
        '    if _dldna_name == "dldna.exercises" or _dldna_name.startswith("dldna.exercises."):\n'
        "        del _dldna_sys.modules[_dldna_name]\n"
        "from dldna.exercises._in_kernel import report as _dldna_report\n"
        f"_dldna_report({secret!r}, {exercise!r}, lambda: (\n"
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
