"""Normalise notebooks before committing: no outputs or execution counts, a Python 3 kernelspec, and no
editor-specific metadata. The website build executes the notebooks, so outputs never belong in git.

Usage: python scripts/nbclean.py chapters/*.ipynb chapters/exercises/*.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with outputs, execution counts and non-essential metadata removed."""
    notebook.metadata = nbformat.from_dict(
        {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}, **({"colab": notebook.metadata["colab"]} if "colab" in notebook.metadata else {})}
    )
    for cell in notebook.cells:
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k in ("tags", "mystnb")})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def main(paths: list[str]) -> None:
    for path in map(Path, paths):
        notebook = nbformat.read(path, as_version=4)
        nbformat.write(clean(notebook), path)


if __name__ == "__main__":
    main(sys.argv[1:])
