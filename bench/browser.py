"""Time the website's browser trainer against dldna.train.fit on the same data, weights and batches.

The browser side is the trainer alone on a page served on 127.0.0.1 (its files written as the book build writes
them, by ``_ext/dldna_trainer.py``, next to the site's plotly.js), in Debian's headless Chromium, once on each of
TensorFlow.js's ``--backends`` (default: plain JavaScript, ``cpu``, and WebAssembly, ``wasm``, what a reader
without a GPU gets; ``webgl`` runs on a software renderer here). Each run trains ``--epochs`` epochs, and the
page's status line gives the seconds of each. fit trains the same run in PyTorch on this machine's CPU (the
kernel panel's CPU budget) on ``--threads`` threads (default 1: both TensorFlow.js backends compute on one).
Both times leave out the test evaluation after each epoch. Printed: the median seconds per epoch of each (the
first epoch left out when there are more), their ratio, and the largest difference between each browser run's
per-step losses and fit's.

    .venv/bin/python bench/browser.py [--optimizer Adam] [--batch-size 64] [--epochs 3] [--backends cpu wasm]
                                      [--threads 1]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import plotly
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the build's extension (_ext) and the browser tests' helpers (tests)

from _ext.dldna_trainer import FOLDER, write_trainer  # noqa: E402
from dldna.browser import kernel_panel, python_run  # noqa: E402
from tests.test_browser_trainer import FIGURE_JS, FINISHED_JS, set_controls  # noqa: E402
from tests.test_site import CHROMIUM, LAUNCH_FLAGS, _QuietHandler  # noqa: E402

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dldna browser trainer</title><link rel="icon" href="data:,">
<script src="plotly.min.js"></script><link rel="stylesheet" href="{folder}/trainer.css">
<script defer src="{folder}/trainer.js"></script></head>
<body><div class="dldna-trainer"></div></body></html>
"""

STATUS_LOG_JS = """
() => {
    window.statusLines = [];
    new MutationObserver(() => window.statusLines.push(document.querySelector('.dldna-trainer-status').textContent))
        .observe(document.querySelector('.dldna-trainer-status'), {childList: true, characterData: true, subtree: true});
}
"""


def write_page(folder: Path) -> dict:
    """The trainer alone on ``folder/index.html``; returns its spec."""
    spec = write_trainer(folder / FOLDER)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", folder / "plotly.min.js")
    (folder / "index.html").write_text(PAGE.format(folder=FOLDER), encoding="utf-8")
    return spec


def browser_runs(folder: Path, spec: dict, args: argparse.Namespace) -> dict[str, tuple[list[float], list[float], str]]:
    """Train in Chromium on each backend; per backend the seconds of each epoch, the per-step losses and the final
    status line."""
    from playwright.sync_api import sync_playwright

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runs = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            page.wait_for_selector(".dldna-trainer[data-state=idle]")
            page.evaluate(STATUS_LOG_JS)
            for backend in args.backends:
                page.evaluate("() => { window.statusLines = []; }")
                set_controls(page, spec, args.optimizer, {}, batch_size=args.batch_size, epochs=args.epochs, backend=backend)
                page.wait_for_function(FINISHED_JS, timeout=600_000)
                shown = page.evaluate(FIGURE_JS)
                lines = page.evaluate("() => window.statusLines")
                epochs = [line for line in dict.fromkeys(lines) if line.startswith("training: epoch")]  # one per epoch
                seconds = [float(re.search(r"([\d.]+) s per epoch", line).group(1)) for line in epochs]
                runs[backend] = seconds, shown["losses"], shown["status"]
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return runs


def steady(seconds: list[float]) -> float:
    """Median seconds per epoch, leaving out the first epoch (warm-up) when there are more."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizer", default="Adam", help="an optimizer the browser trainer offers (default: Adam)")
    parser.add_argument("--batch-size", type=int, default=64, help="one of the panel's batch sizes (default: 64)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each run (default: 3)")
    parser.add_argument("--backends", nargs="+", default=["cpu", "wasm"], choices=["cpu", "wasm", "webgl", "webgpu", "auto"],
                        help="TensorFlow.js backends, one run each (default: cpu wasm)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for fit (default: 1)")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if not Path(CHROMIUM).is_file():
        parser.error(f"Chromium is needed at {CHROMIUM} (apt-get install chromium)")

    with tempfile.TemporaryDirectory(prefix="dldna-bench-browser-") as folder:
        spec = write_page(Path(folder))
        if args.optimizer not in spec["controls"]["optimizer"]["options"]:
            parser.error(f"--optimizer must be one of {spec['controls']['optimizer']['options']}")
        if args.batch_size not in spec["controls"]["batch_size"]["options"]:
            parser.error(f"--batch-size must be one of {spec['controls']['batch_size']['options']}")
        runs = browser_runs(Path(folder), spec, args)

    history = python_run(kernel_panel(), args.optimizer, batch_size=args.batch_size, epochs=args.epochs)
    python = steady(history.epochs["time_s"])
    print(f"{args.optimizer} at the panel's defaults, batch {args.batch_size}, {args.epochs} epochs of "
          f"{spec['data']['train']:,} {spec['data']['name']} images, MLP {'-'.join(map(str, spec['model']['widths']))}")
    print(f"{'way':<44s} {'s/epoch':>8s} {'vs fit':>7s} {'max |loss - fit loss|':>22s}")
    for backend, (seconds, losses, status) in runs.items():
        engine = re.search(r"TensorFlow\.js [\d.]+ on \w+", status).group(0)
        steps = min(len(losses), history.num_steps)  # a diverged run stops early
        difference = float(np.abs(np.asarray(losses[:steps]) - np.asarray(history.steps["loss"][:steps])).max())
        print(f"{engine + ' (Chromium)':<44s} {steady(seconds):8.3f} {steady(seconds) / python:6.1f}x {difference:22.2e}")
    print(f"{f'dldna fit (PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s))':<44s} {python:8.3f} {1.0:6.1f}x")


if __name__ == "__main__":
    main()
