"""What a chapter asks of the book around it: numbers glued into its prose and claims its runs must bear out.

The same notebook runs in three places. In the website build, :func:`glue` hands a value to myst-nb, whose
``{glue:text}`` roles put it into the prose, and a :func:`claim` that the run contradicts fails the build. In
Colab or a plain Jupyter kernel, where myst-nb is not installed, :func:`glue` only remembers the value, and the
Colab edition shows each paragraph that quotes values with :func:`show_paragraph`: the same sentence, with the
numbers of the reader's own run.
"""

from __future__ import annotations

import math
import os
import re
from numbers import Number
from typing import Any

STRICT_ENV = "DLDNA_STRICT_CHECKS"
"""Set to ``1`` by the book build: a worked solution that fails its check, a claim the run contradicts, a figure
without labels or a glued number that is not finite stops the build instead of reaching the page."""

GLUED: dict[str, Any] = {}
"""Every value glued in this kernel, by name: what :func:`show_paragraph` fills in."""

PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][\w.-]*)(?::([^{}]*))?\}\}")
"""``{{name}}`` or ``{{name:format}}`` in a paragraph template: the glued value ``name`` in that format."""

NOT_YET = "[…]"
"""Shown in place of a value whose cell has not run yet."""


class ClaimFailed(AssertionError):
    """A sentence about a run that the run contradicts (raised in the book build)."""


def strict() -> bool:
    """Is this the book build, where anything a reader would be misled by must stop the build?"""
    return os.environ.get(STRICT_ENV) == "1"


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the prose as ``name``: to myst-nb's ``{glue:text}`name:format``` role on the
    website, and to :func:`show_paragraph` everywhere. A number that is not finite is refused in the book build,
    where it would otherwise print as ``nan`` in a sentence."""
    if strict() and isinstance(value, Number) and not isinstance(value, bool) and not math.isfinite(float(value)):
        raise ValueError(f"glue({name!r}, {value!r}): the value is not finite, so the sentence quoting it is false")
    GLUED[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or a plain kernel: the Colab edition reads GLUED instead
        return
    myst_glue(name, value, display)


class _Missing:
    """Stands in for a value not glued yet, whatever format the template asks of it."""

    def __format__(self, spec: str) -> str:
        return NOT_YET


def fill(template: str, values: dict[str, Any] | None = None) -> str:
    """``template`` with every ``{{name:format}}`` replaced by ``format(values[name], format)`` (default: the
    values glued so far); a value not glued yet reads ``[…]``."""
    values = GLUED if values is None else values

    def replace(match: re.Match[str]) -> str:
        name, spec = match[1], match[2] or ""
        return format(values.get(name, _Missing()), spec)

    return PLACEHOLDER.sub(replace, template)


def _show_markdown(text: str) -> None:
    """Render ``text`` as Markdown in a notebook; print it elsewhere (a script, a test)."""
    from IPython import get_ipython
    from IPython.display import Markdown, display

    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def show_paragraph(template: str) -> None:
    """Display a paragraph of the chapter (Markdown) with the values glued so far: the Colab edition's form
    cells call this where the website quotes glued values."""
    _show_markdown(fill(template))


def claim(holds: bool, sentence: str) -> bool:
    """State an outcome of the run: ``sentence`` (Markdown) is shown when the run bears it out. When it does
    not, the book build stops (:class:`ClaimFailed`), and a reader's own run shows the sentence marked as not
    borne out, so the page never asserts what the numbers above it contradict. Returns ``holds``."""
    if holds:
        _show_markdown(sentence)
    elif strict():
        raise ClaimFailed(f"the run contradicts the sentence: {sentence}")
    else:
        _show_markdown(f"**Not borne out by this run** (the book's run showed it; yours differs): ~~{sentence}~~")
    return bool(holds)
