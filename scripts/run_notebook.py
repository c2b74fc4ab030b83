"""Execute one notebook the way the book build does, and report how long each cell took.

Usage: python scripts/run_notebook.py chapters/optimizers.ipynb [--save executed.ipynb]
Runs in the notebook's folder with DLDNA_STRICT_CHECKS=1 and progress bars off; exits non-zero on the
first failing cell. Use it to keep a chapter within the CPU time budget before building the whole book.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


class _TimedClient(NotebookClient):
    """A notebook client that records the wall time of each code cell."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timings: list[tuple[int, float, str]] = []

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        start = time.perf_counter()
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            if cell.cell_type == "code":
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                self.timings.append((cell_index, time.perf_counter() - start, first_line[:70]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--save", type=Path, help="write the executed notebook here")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    arguments = parser.parse_args()
    os.environ.update(DLDNA_STRICT_CHECKS="1", DLDNA_PROGRESS="0")
    notebook = nbformat.read(arguments.notebook, as_version=4)
    client = _TimedClient(
        notebook, timeout=arguments.timeout, kernel_name="python3",
        resources={"metadata": {"path": str(arguments.notebook.parent.resolve())}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        print(error)
        raise SystemExit(1) from error
    finally:
        for index, seconds, first_line in client.timings:
            print(f"cell {index:3d} {seconds:7.1f} s  {first_line}")
        print(f"total {time.perf_counter() - start:.1f} s")
        if arguments.save:
            nbformat.write(notebook, arguments.save)


if __name__ == "__main__":
    main()
