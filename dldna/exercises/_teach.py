"""The instructor's tools (editions and grading) need the ``teach`` extra; say so in one sentence when it is
missing instead of failing on a bare ``ModuleNotFoundError``."""

from __future__ import annotations

import importlib.util
import sys

TEACH_MODULES = ("nbformat", "nbclient", "ipykernel")
INSTALL_TEACH = 'pip install "dldna[teach] @ git+https://github.com/dldna/dldna" (or pip install ".[teach]" in a clone)'


def require_teach_extra(tool: str, run_as_script: bool) -> None:
    """Stop unless every module of the ``teach`` extra is importable: as a script, print one sentence and exit
    with status 2; imported as a library, raise ``ModuleNotFoundError`` with the same sentence."""
    missing = [name for name in TEACH_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = f"{tool} needs the 'teach' extra ({', '.join(missing)} is not installed): {INSTALL_TEACH}."
    if run_as_script:
        print(message, file=sys.stderr)
        raise SystemExit(2)
    raise ModuleNotFoundError(message, name=missing[0])
