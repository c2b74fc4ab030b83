"""Run a notebook's cells in a fresh Jupyter kernel inside a process of its own, within a wall-clock limit for
the whole notebook and a memory limit, and stream what each cell produced back to the grader.

:func:`run_isolated` (the grader's side) starts ``python -m dldna.exercises._runner`` in a new session, sends it
the cells on stdin, and reads one JSON line per event from a pipe that only that process holds (the kernel it
starts does not inherit it, so the student's code cannot write there). The runner executes the cells with
nbclient, going on past cells that raise, with each cell's timeout set to what is left of the notebook's limit.
Whatever happens in the kernel (an endless loop, ``os._exit``, running out of memory) ends as an event; if the
runner itself hangs, the grader kills its process group and the kernel's when the limit and a start-up
allowance have passed. Events the runner sends:

- ``{"kernel": pid}`` once the kernel is ready (the notebook's clock starts then);
- ``{"cell": i, "errors": [[ename, evalue], ...], "verdicts": [...]}`` after each executed cell, with the
  verdicts tagged with the run's secret (so that a flood of fake ones cannot push the real one out);
- ``{"end": "completed" | "time limit" | "kernel died" | "grader error", "cell": i, "detail": "..."}`` last.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from dldna.exercises import GRADING_ENV
from dldna.exercises._in_kernel import VERDICT_MIME

KERNEL_ENV = {"DLDNA_STRICT_CHECKS": "0", "DLDNA_PROGRESS": "0", "MPLBACKEND": "Agg"}
"""Set in every kernel started here: checks report instead of raising, no progress bars, no figure windows.
:func:`run_isolated` also sets ``DLDNA_GRADING=1``: the notebook's own ``check`` calls leave the checking to
the grader's cells."""

STARTUP_ALLOWANCE = 90.0
"""Seconds the runner may take beyond the notebook's limit (its own start, the kernel's start and shutdown)
before the grader kills it."""

_MAX_RECORDS = 20
_MAX_TEXT = 500


def execute_notebook(notebook: nbformat.NotebookNode, folder: Path, timeout: int, kernel: str = "python3") -> nbformat.NotebookNode:
    """Run every cell of ``notebook`` in this process's fresh ``kernel`` started in ``folder`` (``timeout``
    seconds per cell), going on past cells that raise, with :data:`KERNEL_ENV`; returns ``notebook`` with its
    outputs. For trusted notebooks; the grader runs students' notebooks through :func:`run_isolated`."""
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel, allow_errors=True, resources={"metadata": {"path": str(folder)}})
    client.execute(env={**os.environ, **KERNEL_ENV})
    return notebook


@dataclass
class CellResult:
    """What one executed cell produced that grading needs: its errors and any outputs of the verdict type."""

    errors: list[tuple[str, str]]
    verdicts: list[dict[str, Any]]


@dataclass
class Run:
    """The outcome of :func:`run_isolated`: how the run ended, the cell running when it stopped (``None`` when
    it completed), a sentence of detail, and the results of the cells that finished, by index."""

    status: str
    stopped_at: int | None = None
    detail: str = ""
    cells: dict[int, CellResult] = field(default_factory=dict)


def run_isolated(
    cells: list[str], folder: Path, timeout: float, secret: str, kernel: str = "python3", memory_gib: float | None = None
) -> Run:
    """Execute ``cells`` (code sources) in a fresh ``kernel`` started in ``folder``, in a process of its own, with
    ``timeout`` seconds for all of them together and at most ``memory_gib`` GiB of data per process (Linux),
    keeping the verdicts tagged with ``secret``. Always returns: a run that loops, kills its kernel or hangs
    ends with the matching :class:`Run` status."""
    request = {"cells": cells, "folder": str(folder), "timeout": timeout, "secret": secret, "kernel": kernel, "memory_gib": memory_gib}
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "dldna.exercises._runner", str(write_end)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_end,),
            start_new_session=True,
            cwd=folder,
        )
    finally:
        os.close(write_end)
    try:
        assert process.stdin is not None
        with suppress(BrokenPipeError):
            process.stdin.write(json.dumps(request).encode())
            process.stdin.close()
        received, finished = _read_until(read_end, time.monotonic() + timeout + STARTUP_ALLOWANCE)
    finally:
        os.close(read_end)
    if not finished:
        _kill_group(process.pid)
    process.wait()
    events = [json.loads(line) for line in received.decode("utf-8", "replace").splitlines() if line.strip()]
    kernel_pid = next((event["kernel"] for event in events if "kernel" in event), None)
    if kernel_pid is not None:
        _kill_group(kernel_pid)  # whatever the student's code left running in the kernel's process group
    run = Run("grader error", detail=f"the grading process exited with status {process.returncode} without a result")
    for event in events:
        if "cell" in event and "end" not in event:
            run.cells[event["cell"]] = CellResult([tuple(error) for error in event["errors"]], event["verdicts"])
        elif "end" in event:
            run.status, run.stopped_at, run.detail = event["end"], event["cell"], event["detail"]
    if not finished:
        stopped_at = max(run.cells, default=-1) + 1 if kernel_pid is not None else None
        run.status, run.stopped_at = "time limit", stopped_at
        run.detail = f"the grading process did not finish within {timeout + STARTUP_ALLOWANCE:.0f} s and was stopped"
    return run


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to ``fd`` until its writer closes it (then ``True``) or ``deadline`` passes."""
    received = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return bytes(received), True
                received += chunk
    return bytes(received), False


def _kill_group(group: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def _limit_memory(gib: float | None) -> None:
    """Cap this process's data (heap and private mappings), and so its kernel's, at ``gib`` GiB where the OS
    supports it; soft and hard limit alike, so the student's code cannot raise it again."""
    try:
        import resource
    except ImportError:  # Windows
        return
    if not gib or not hasattr(resource, "RLIMIT_DATA"):
        return
    limit = int(gib * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _cell_result(cell: nbformat.NotebookNode, secret: str) -> dict[str, Any]:
    errors = [[o.ename[:_MAX_TEXT], o.evalue[:_MAX_TEXT]] for o in cell.outputs if o.output_type == "error"]
    data = [o.data[VERDICT_MIME] for o in cell.outputs if o.output_type == "display_data" and VERDICT_MIME in o.get("data", {})]
    verdicts = [verdict for verdict in data if isinstance(verdict, dict) and verdict.get("secret") == secret]
    return {"errors": errors[:_MAX_RECORDS], "verdicts": verdicts[:_MAX_RECORDS]}


def _execute(request: dict[str, Any], send: Callable[..., None]) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in request["cells"]])
    deadline, current = math.inf, None

    def started(**_: Any) -> None:
        nonlocal deadline
        deadline = time.monotonic() + request["timeout"]
        send(kernel=client.km.provisioner.pid)

    def starting(cell_index: int, **_: Any) -> None:
        nonlocal current
        current = cell_index

    def executed(cell: nbformat.NotebookNode, cell_index: int, **_: Any) -> None:
        send(cell=cell_index, **_cell_result(cell, request["secret"]))

    client = NotebookClient(
        notebook,
        timeout_func=lambda cell: max(deadline - time.monotonic(), 0.01),
        kernel_name=request["kernel"],
        allow_errors=True,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": request["folder"]}},
        on_notebook_start=started,
        on_cell_start=starting,
        on_cell_executed=executed,
    )
    try:
        client.execute(env={**os.environ, **KERNEL_ENV, GRADING_ENV: "1"})
    except CellTimeoutError:
        send(end="time limit", cell=current, detail=f"the notebook ran past its {request['timeout']:g} s limit")
    except DeadKernelError:
        send(end="kernel died", cell=current, detail="the kernel stopped (the code ended its process, or it ran out of memory)")
    else:
        send(end="completed", cell=None, detail="")


def main() -> None:
    """The runner process: read the request from stdin, run it, write events to the file descriptor in argv."""
    channel_fd = int(sys.argv[1])
    os.set_inheritable(channel_fd, False)
    request = json.loads(sys.stdin.read())
    with open(channel_fd, "w", encoding="utf-8", buffering=1) as channel:

        def send(**event: Any) -> None:
            channel.write(json.dumps(event) + "\n")

        try:
            _limit_memory(request["memory_gib"])
            _execute(request, send)
        except Exception as error:  # anything else (a kernel that cannot start, ...) still ends with an event
            send(end="grader error", cell=None, detail=f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
