"""The browser trainer on the built website, in Debian's Chromium (headless, every off-site request refused and
recorded): it loads nothing heavy before the reader touches it, its runs give the per-step losses of
dldna.train.fit from the same weights and batches, a slider move cancels the run in progress, and a huge learning
rate is reported as diverged.

The compared runs use TensorFlow.js's plain JavaScript (CPU) backend, and one its WebAssembly backend, which a
reader without a GPU gets; the largest difference to fit of every run is written to
``test-artifacts/browser_trainer.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from dldna.browser import kernel_panel, python_run
from tests.test_book import HTML
from tests.test_site import CHROMIUM, artifact, browser, open_page, site  # noqa: F401 (browser and site are fixtures)

PAGE = HTML / "chapters" / "optimizers.html"
SPEC = HTML / "_static" / "trainer" / "trainer.json"
LOSS_TOLERANCE = 1e-4
"""Largest difference allowed between a browser loss and fit's at the same step (float32, 32 to 125 steps)."""
RUN_TIMEOUT_MS = 180_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module", autouse=True)
def built_website() -> None:
    """A missing website is a failure (these tests run after `make book`), never a silent skip."""
    if not PAGE.is_file():
        pytest.fail("the website is not built: run `make book` first")


@pytest.fixture(scope="module")
def panel():
    return kernel_panel()


@pytest.fixture(scope="module")
def spec() -> dict:
    """The trainer's spec as the site serves it."""
    return json.loads(SPEC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def trainer(browser: object, site: str) -> Iterator[tuple[object, object]]:
    """The optimizers page with its trainer drawn; shared by the tests that train (each sets every control)."""
    page, log = open_page(browser, f"{site}/chapters/optimizers.html")
    page.wait_for_selector(".dldna-trainer[data-state=idle]", timeout=30_000)
    yield page, log
    page.close()


@pytest.fixture(scope="module")
def agreement() -> Iterator[dict[str, float]]:
    """Largest |browser loss - fit loss| of every compared run, written out when the module ends."""
    differences: dict[str, float] = {}
    yield differences
    if differences:
        artifact("browser_trainer.json").write_text(json.dumps({"max_abs_loss_difference": differences}, indent=1))


SET_CONTROLS_JS = """
([optimizer, backend, positions, flags, batchIndex, epochs]) => {
    const root = document.querySelector('.dldna-trainer');
    const fire = (input, type) => input.dispatchEvent(new Event(type, {bubbles: true}));
    const select = (name, value) => { const input = root.querySelector(`select[name=${name}]`); input.value = value; fire(input, 'change'); };
    const slide = (name, value) => { const input = root.querySelector(`input[name=${name}]`); input.value = value; fire(input, 'input'); };
    select('optimizer', optimizer);
    select('backend', backend);
    for (const [name, position] of Object.entries(positions)) slide(name, position);
    for (const [name, checked] of Object.entries(flags)) {
        const box = root.querySelector(`input[name=${name}]`); box.checked = checked; fire(box, 'change');
    }
    slide('batch_size', batchIndex);
    slide('epochs', epochs);
    return root.dataset.state;
}
"""

FINISHED_JS = "() => ['done', 'diverged', 'error'].includes(document.querySelector('.dldna-trainer').dataset.state)"

FIGURE_JS = """
() => {
    const plot = document.querySelector('.dldna-trainer-plot');
    return {losses: plot.data[0].y, accuracy: plot.data[1].y, title: plot.layout.title.text,
            status: document.querySelector('.dldna-trainer-status').textContent,
            state: document.querySelector('.dldna-trainer').dataset.state};
}
"""


def slider_value(spec_slider: Mapping[str, float], position: float) -> float:
    """The value a slider at ``position`` stands for (log sliders: base ** position), as the page computes it."""
    base = spec_slider.get("log_base")
    return base**position if base else position


def set_controls(page: object, spec: Mapping, optimizer: str, positions: Mapping[str, float],
                 flags: Mapping[str, bool] | None = None, *, batch_size: int, epochs: int, backend: str = "cpu") -> str:
    """Set every control of the trainer described by ``spec`` as a reader would (slider positions, not values);
    the trainer's state afterwards."""
    batch_index = spec["controls"]["batch_size"]["options"].index(batch_size)
    return page.evaluate(SET_CONTROLS_JS, [optimizer, backend, dict(positions), dict(flags or {}), batch_index, epochs])


def train(page: object, spec: Mapping, optimizer: str, positions: Mapping[str, float], flags: Mapping[str, bool] | None = None,
          *, batch_size: int = 64, epochs: int = 1, backend: str = "cpu") -> dict:
    """Set every control, wait for the run to end and read the figure and status line."""
    state = set_controls(page, spec, optimizer, positions, flags, batch_size=batch_size, epochs=epochs, backend=backend)
    assert state == "waiting", "a control change schedules a run after the debounce delay"
    page.wait_for_function(FINISHED_JS, timeout=RUN_TIMEOUT_MS)
    return page.evaluate(FIGURE_JS)


def assert_clean(log: object) -> None:
    assert not log.page_errors, f"uncaught errors: {log.page_errors}"
    assert not log.console_errors, f"console errors: {log.console_errors}"
    assert not log.remote_requests, f"the page asked the network for: {log.remote_requests}"


RESOURCES_JS = "() => performance.getEntriesByType('resource').map(entry => entry.name)"


def test_nothing_heavy_loads_before_the_reader_touches_the_trainer(browser: object, site: str) -> None:
    page, log = open_page(browser, f"{site}/chapters/optimizers.html")
    try:
        page.wait_for_selector(".dldna-trainer[data-state=idle]", timeout=30_000)
        page.wait_for_timeout(1000)
        status = page.inner_text(".dldna-trainer-status")
        assert "Move a control or press Train" in status and "MB" in status
        loaded = page.evaluate(RESOURCES_JS)
        assert any(url.endswith("/trainer/trainer.json") for url in loaded), "the controls come from the exported spec"
        assert not [url for url in loaded if "/tfjs/" in url or url.endswith(".bin.gz")], "loaded before any interaction"
        assert page.evaluate("() => typeof window.tf") == "undefined"
        assert page.locator(".dldna-trainer select[name=optimizer] option").count() >= 6
        page.locator(".dldna-trainer input[name=epochs]").focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => typeof window.tf === 'object'", timeout=60_000)
        page.wait_for_function(FINISHED_JS, timeout=RUN_TIMEOUT_MS)
        assert [url for url in page.evaluate(RESOURCES_JS) if url.endswith(".bin.gz")], "the first touch fetches the data"
        assert_clean(log)
    finally:
        page.close()


RUNS = [
    ("SGD", {"lr": -2.0, "momentum": 0.9}, {}, 64),
    ("SGD", {"lr": -1.3, "momentum": 0.5}, {}, 128),
    ("Adam", {"lr": -3.0, "beta1": 0.9, "beta2": 0.999}, {}, 64),
    ("Adam", {"lr": -2.5, "beta1": 0.8, "beta2": 0.99, "weight_decay": -3.0}, {}, 32),
]
OTHER_OPTIMIZERS = [
    ("SGD", {"lr": -1.5, "momentum": 0.8}, {"nesterov": True}, 128),
    ("Adagrad", {"lr": -1.7, "weight_decay": -4.0}, {}, 128),
    ("RMSprop", {"lr": -3.0, "momentum": 0.5, "beta2": 0.95}, {"centered": True}, 128),
    ("AdamW", {"lr": -2.7}, {"amsgrad": True}, 128),
    ("NAdam", {"lr": -2.7, "weight_decay": -2.0}, {"decoupled_weight_decay": True}, 128),
    ("Lion", {"lr": -4.0, "beta1": 0.9, "beta2": 0.99}, {}, 128),
]


def run_id(run: tuple) -> str:
    optimizer, positions, flags, batch_size = run
    return "-".join([optimizer, *(f"{name}{value:g}" for name, value in positions.items()), *flags, f"batch{batch_size}"])


@pytest.mark.parametrize(("optimizer", "positions", "flags", "batch_size"), RUNS + OTHER_OPTIMIZERS, ids=map(run_id, RUNS + OTHER_OPTIMIZERS))
def test_a_browser_epoch_gives_the_losses_of_fit(trainer, panel, spec, agreement, optimizer, positions, flags, batch_size) -> None:
    """One epoch in the browser and one of fit from the same weights and batches: the same loss at every step."""
    page, log = trainer
    sliders = spec["controls"]["sliders"]
    shown = train(page, spec, optimizer, positions, flags, batch_size=batch_size)
    history = python_run(panel, optimizer, {name: slider_value(sliders[name], p) for name, p in positions.items()}, flags,
                         batch_size=batch_size, epochs=1)
    assert shown["state"] == "done", shown["status"]
    assert "epoch 1/1 · TensorFlow.js" in shown["status"] and " on cpu" in shown["status"]
    assert "s per epoch" in shown["status"]
    browser, python = np.asarray(shown["losses"]), np.asarray(history.steps["loss"])
    assert len(browser) == len(python) == math.ceil(spec["data"]["train"] / batch_size)
    difference = float(np.abs(browser - python).max())
    agreement[run_id((optimizer, positions, flags, batch_size))] = difference
    assert difference < LOSS_TOLERANCE, f"largest per-step loss difference {difference:.2e}"
    assert python[-1] < python[0], "the setting trains"
    assert shown["accuracy"][0] == pytest.approx(100 * history.final_test_acc, abs=0.2)
    assert_clean(log)


RECORD_DRAWS_JS = """
() => {
    window.trainerDraws = [];
    const react = Plotly.react;
    Plotly.react = function (div, data, layout, config) {
        if (div.classList.contains('dldna-trainer-plot')) window.trainerDraws.push({at: performance.now(), title: layout.title.text});
        return react.apply(this, arguments);
    };
}
"""

MOVE_JS = """
([lr, epochs]) => {
    const root = document.querySelector('.dldna-trainer');
    window.movedAt = performance.now();
    for (const [name, value] of [['lr', lr], ['epochs', epochs]]) {
        const input = root.querySelector(`input[name=${name}]`);
        input.value = value;
        input.dispatchEvent(new Event('input', {bubbles: true}));
    }
}
"""


def test_moving_a_slider_cancels_the_run_in_progress(trainer, panel, spec) -> None:
    page, log = trainer
    page.evaluate(RECORD_DRAWS_JS)
    assert set_controls(page, spec, "SGD", {"lr": -2.0, "momentum": 0.9}, batch_size=64, epochs=20) == "waiting"
    page.wait_for_function("() => document.querySelector('.dldna-trainer-plot').data?.[0]?.y.length >= 5", timeout=RUN_TIMEOUT_MS)
    old_title = page.evaluate("() => document.querySelector('.dldna-trainer-plot').layout.title.text")
    page.evaluate(MOVE_JS, [-1.5, 1])
    page.wait_for_function(FINISHED_JS, timeout=RUN_TIMEOUT_MS)
    shown = page.evaluate(FIGURE_JS)
    draws = page.evaluate("() => window.trainerDraws.filter(draw => draw.at > window.movedAt)")
    assert draws, "the new run drew its curves"
    assert all(draw["title"] == shown["title"] != old_title for draw in draws), "a curve of the old setting was drawn after the move"
    assert "learning rate 3.2e-2" in shown["title"]
    history = python_run(panel, "SGD", {"lr": 10**-1.5, "momentum": 0.9}, batch_size=64, epochs=1)
    assert len(shown["losses"]) == history.num_steps, "the figure holds the new run alone"
    assert float(np.abs(np.asarray(shown["losses"]) - history.steps["loss"]).max()) < LOSS_TOLERANCE
    assert shown["status"].startswith("done: epoch 1/1")
    assert_clean(log)


def test_a_huge_learning_rate_is_reported_as_diverged(trainer, spec) -> None:
    page, log = trainer
    largest = spec["controls"]["sliders"]["lr"]["max"]
    shown = train(page, spec, "SGD", {"lr": largest, "momentum": 0.9}, epochs=3)
    assert shown["state"] == "diverged"
    assert shown["status"].startswith("diverged at step ")
    assert all(math.isfinite(loss) for loss in shown["losses"]), "only finite losses are drawn"
    assert not shown["accuracy"], "the run stopped within its first epoch"
    shown = train(page, spec, "Adam", {"lr": largest}, epochs=3)
    assert shown["state"] == "diverged", "Adam's bounded steps keep the loss finite; its size alone reports it"
    window = spec["divergence"]["window"]
    assert f"over the last {window} steps the loss averaged more than" in shown["status"]
    assert np.mean(shown["losses"][-window:]) > spec["divergence"]["factor"] * shown["losses"][0]
    assert_clean(log)


@pytest.mark.parametrize("optimizer", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "Lion"])
def test_no_optimizer_diverges_at_its_defaults(trainer, spec, optimizer: str) -> None:
    """A spike, such as RMSprop's first steps at its default learning rate, is not reported as a divergence."""
    if optimizer not in spec["controls"]["optimizer"]["options"]:
        pytest.fail(f"{optimizer} is missing from the browser trainer")
    page, log = trainer
    shown = train(page, spec, optimizer, {}, epochs=1, backend="wasm")
    assert shown["state"] == "done", shown["status"]
    assert_clean(log)


def test_auto_picks_a_backend_and_says_which(trainer, panel, agreement, spec) -> None:
    """Without a GPU (Chromium runs with --disable-gpu) "auto" takes WebAssembly, which agrees with fit as well."""
    page, log = trainer
    shown = train(page, spec, "Adam", {"lr": -3.0}, backend="auto")
    assert shown["state"] == "done"
    assert " on wasm · " in shown["status"], shown["status"]
    history = python_run(panel, "Adam", {"lr": 1e-3}, batch_size=64, epochs=1)
    difference = float(np.abs(np.asarray(shown["losses"]) - history.steps["loss"]).max())
    agreement["Adam-lr-3-batch64 on wasm"] = difference
    assert difference < LOSS_TOLERANCE
    assert_clean(log)
