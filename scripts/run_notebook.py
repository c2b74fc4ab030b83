"""Execute notebooks the way the book build does, and report how long each cell and each notebook took.

Usage: python scripts/run_notebook.py chapters/optimizers.ipynb [more.ipynb ...] [--save executed.ipynb] [--cells]
Runs each in its folder with DLDNA_STRICT_CHECKS=1 and progress bars off; exits non-zero if a notebook fails
(the others still run). With several notebooks it ends with a table of their times: run it on every chapter
(`python scripts/run_notebook.py chapters/*.ipynb chapters/exercises/*.ipynb`) to see each chapter's share of
the book's build time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


class _TimedClient(NotebookClient):
    """A notebook client that records the wall time of each code cell and the CPU time its kernel has used.

    On a busy machine the wall time grows with the load, while the kernel's CPU time (user + system, over its
    threads) barely does: on the idle 2-core build machine a chapter's wall time is about its CPU time divided
    by 1.5 to 2 (torch runs two threads), which is how to estimate it while others share the machine.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timings: list[tuple[int, float, str]] = []
        self.kernel_cpu_s = 0.0

    def _record_kernel_cpu(self) -> None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None:
            try:
                times = psutil.Process(process.pid).cpu_times()
            except psutil.Error:
                return
            self.kernel_cpu_s = times.user + times.system + times.children_user + times.children_system

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        start = time.perf_counter()
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            self._record_kernel_cpu()
            if cell.cell_type == "code":
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                self.timings.append((cell_index, time.perf_counter() - start, first_line[:70]))


def run(path: Path, timeout: int, save: Path | None, show_cells: bool) -> tuple[float, float, bool]:
    """Execute one notebook; print its cells' times (all of them with ``show_cells``, else the failing run's);
    return its wall time, its kernel's CPU time and whether it ran to the end."""
    notebook = nbformat.read(path, as_version=4)
    client = _TimedClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    passed = True
    try:
        client.execute()
    except CellExecutionError as error:
        print(error)
        passed = False
    finally:
        if show_cells or not passed:
            for index, seconds, first_line in client.timings:
                print(f"cell {index:3d} {seconds:7.1f} s  {first_line}")
        if save:
            nbformat.write(notebook, save)
    return time.perf_counter() - start, client.kernel_cpu_s, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", type=Path, nargs="+")
    parser.add_argument("--save", type=Path, help="write the executed notebook here (one notebook only)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--cells", action="store_true", help="print every cell's time (default with one notebook)")
    arguments = parser.parse_args()
    if arguments.save and len(arguments.notebooks) > 1:
        parser.error("--save takes one notebook")
    os.environ.update(DLDNA_STRICT_CHECKS="1", DLDNA_PROGRESS="0")
    results = {}
    for path in arguments.notebooks:
        results[path] = run(path, arguments.timeout, arguments.save, arguments.cells or len(arguments.notebooks) == 1)
        wall, cpu, passed = results[path]
        print(f"{path}: {wall:.1f} s wall, {cpu:.1f} s kernel CPU{'' if passed else '  FAILED'}", flush=True)
    if len(results) > 1:
        width = max(len(str(path)) for path in results)
        print(f"\n{'notebook':{width}}  wall (s)  kernel CPU (s)")
        for path, (wall, cpu, passed) in results.items():
            print(f"{str(path):{width}}  {wall:8.1f}  {cpu:14.1f}{'' if passed else '  FAILED'}")
        print(f"{'total':{width}}  {sum(r[0] for r in results.values()):8.1f}  {sum(r[1] for r in results.values()):14.1f}")
    if not all(passed for _, _, passed in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
