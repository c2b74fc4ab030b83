"""Execute the book's notebooks two at a time, each on one torch thread, before the website is built.

``jupyter-book build`` executes notebooks one after another. On the 2-core build machine that leaves a core idle
whenever a chapter's work is small operations that one thread runs as fast as two (most of this book's
networks are small). Here every notebook of the table of contents runs in its own kernel with one torch thread,
``--jobs`` at a time, longest first (by the time each took last), and lands in the jupyter-cache folder of
``_config.yml``; the build (``execute_notebooks: cache``) then finds every notebook executed and runs none.
The cache is emptied first, so the website never shows an execution older than the package.

``--publish``, run after the build, writes the executed notebooks from the cache into ``_build/jupyter_execute``:
in cache mode myst-nb writes there the notebook it read, without outputs, while the translated websites
(:mod:`dldna.book.i18n`) and the tests of the built site take every notebook from that folder as the pages show it.

Prints each notebook's execution time as it finishes and the total; exits non-zero, naming the notebooks and
their errors, when one fails (a failing claim or solution check in the strict build included).

    python -m dldna.book.execute [--jobs 2] [--threads 1] [--root .]
    python -m dldna.book.execute --publish [--root .]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

from dldna.book.i18n import EXECUTED, _config, pages

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that set torch's (and NumPy's) thread count when a kernel starts."""


@dataclass(frozen=True)
class Executed:
    """One notebook after execution: the notebook with its outputs, seconds taken, and the error (None on success)."""

    path: Path
    notebook: nbformat.NotebookNode
    seconds: float
    error: str | None


def cache_folder(root: Path) -> Path:
    """The jupyter-cache folder the build reads (``execute.cache`` in ``_config.yml``)."""
    folder = (_config(root).get("execute") or {}).get("cache")
    if not folder:
        raise ValueError("_config.yml must name the cache folder the build reads (execute: cache: ...)")
    return root / folder


def _execute(path: Path, timeout: int) -> Executed:
    """Run one notebook in its own folder, as the build would."""
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(path.parent), timeout=timeout, allow_errors=False, meta_override=True)
    return Executed(path, notebook, result.time, None if result.err is None else result.exc_string)


def _notebooks(root: Path) -> list[Path]:
    """The book's notebooks (pages of ``_toc.yml`` that are notebooks), in reading order."""
    return [page.source for page in pages(root) if page.is_notebook]


def _longest_first(notebooks: list[Path], previous: dict[str, float]) -> list[Path]:
    """Notebooks by the seconds they took last time, longest first (unknown ones first, in reading order), so that
    the last to start are the short ones and no worker idles long at the end."""
    return sorted(notebooks, key=lambda path: -previous.get(str(path), float("inf")))


def execute_book(root: Path, jobs: int, threads: int, timeout: int) -> list[Executed]:
    """Execute every notebook of the book into the build's cache (module docstring); the results in finishing order."""
    cache = get_cache(str(cache_folder(root)))
    previous = {record.uri: record.data.get("execution_seconds", 0.0) for record in cache.list_cache_records()}
    cache.clear_cache()
    notebooks = _longest_first([path.resolve() for path in _notebooks(root)], previous)
    for variable in THREAD_VARIABLES:  # inherited by every kernel the workers start
        os.environ[variable] = str(threads)
    finished: list[Executed] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_execute, path, timeout) for path in notebooks]
        for future in as_completed(futures):
            executed = future.result()
            finished.append(executed)
            relative = executed.path.relative_to(root.resolve())
            print(f"{executed.seconds:7.1f} s  {relative}{'  FAILED' if executed.error else ''}", flush=True)
            if executed.error is None:
                bundle = CacheBundleIn(executed.notebook, str(executed.path), data={"execution_seconds": executed.seconds})
                cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
    return finished


def publish(root: Path) -> list[Path]:
    """Write every notebook of the book, with the outputs the build took from the cache, into
    ``_build/jupyter_execute`` (module docstring); the paths written. Raises ``ValueError`` naming a notebook the
    cache does not hold."""
    folder = cache_folder(root)
    cache = get_cache(str(folder))
    written = []
    for source in _notebooks(root):
        try:
            _, executed = cache.merge_match_into_notebook(nbformat.read(source, as_version=4))
        except KeyError:
            raise ValueError(f"{source} has no execution in {folder}: run make book") from None
        target = root / EXECUTED / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per notebook")
    parser.add_argument("--timeout", type=int, default=900, help="seconds a cell may run")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book's repository")
    parser.add_argument("--publish", action="store_true", help="after the build: the executed notebooks into _build/jupyter_execute")
    args = parser.parse_args()
    if min(args.jobs, args.threads, args.timeout) < 1:
        parser.error("--jobs, --threads and --timeout must be >= 1")
    if not (args.root / "_toc.yml").is_file():
        parser.error(f"{args.root.resolve()} is not the book's repository (no _toc.yml): pass --root")
    if args.publish:
        try:
            print(f"{len(publish(args.root))} executed notebooks written into {args.root / EXECUTED}")
        except ValueError as error:
            sys.exit(str(error))
        return
    start = time.perf_counter()
    finished = execute_book(args.root, args.jobs, args.threads, args.timeout)
    print(f"{time.perf_counter() - start:7.1f} s  all {len(finished)} notebooks, {args.jobs} at a time, "
          f"{args.threads} torch thread{'s' if args.threads > 1 else ''} each")
    if failed := [executed for executed in finished if executed.error]:
        for executed in failed:
            print(f"\n{executed.path} failed:\n{executed.error}", file=sys.stderr)
        sys.exit(f"{len(failed)} notebook(s) failed: {', '.join(str(e.path) for e in failed)}")


if __name__ == "__main__":
    main()
