"""How a run reports itself: the statuses of dldna.history's rules, on constructed records and on real FashionMNIST
runs of fit, fit_fast and sweep, the sentences prose quotes, and the progress bar."""

from __future__ import annotations

import functools
import math
import re
import time

import pytest
import torch
from torch import nn

import dldna
from dldna.data import Dataset, load_fashion_mnist
from dldna.data import fashion_mnist as fm
from dldna.history import CHANCE_MARGIN, DIVERGENCE_FACTOR, DIVERGENCE_WINDOW, NOTHING_LOSS_FRACTION, History
from dldna.models import MLP
from dldna.optim import SGD, Adam
from dldna.train import Callback, TrainState, fit, fit_fast, sweep
from dldna.train import run as run_module

needs_fashion_mnist = pytest.mark.skipif(
    not all((fm.DEBIAN_DIR / name).is_file() for name in fm.CONTENT_SHA256), reason="Debian's dataset-fashion-mnist is not installed"
)
LN10 = math.log(10)


def record(losses: list[float], test_loss: float = 0.5, test_acc: float = 0.8, classes: int = 10) -> History:
    """A run's History with the given step losses and one finished epoch, concluded."""
    history = History(config={"classes": classes})
    history.steps["loss"] = list(losses)
    history.epochs["test_loss"], history.epochs["test_acc"] = [test_loss], [test_acc]
    history.conclude()
    return history


# --- the rules, on constructed records ------------------------------------------------------------------------


def test_a_finite_blow_up_is_diverged_where_the_window_mean_first_passes_the_limit() -> None:
    start = 2.3
    losses = [start] * 20 + [start * DIVERGENCE_FACTOR * 3] * 6 + [1e13] * 10
    history = record(losses, test_loss=5e13, test_acc=0.12)
    # the window ending at step 23 holds four blown-up losses: 4 * 690 / 10 = 276 > 230; at step 22, 207 < 230
    assert history.status == "diverged" and history.diverged_at == 23
    assert "more than 100 times its first value, 2.3" in history.summary() and history.outcome() == "diverged at step 23"


def test_a_single_spike_or_a_short_run_is_not_a_divergence() -> None:
    spike = [2.3] * 5 + [2.3 * DIVERGENCE_FACTOR * (DIVERGENCE_WINDOW - 1)] + [0.5] * 30
    assert record(spike).status == "completed"
    assert record([2.3] * (DIVERGENCE_WINDOW - 2) + [1e6]).status == "completed", "fewer steps than the window"


@pytest.mark.parametrize("test_loss", [math.inf, math.nan, 2.3 * DIVERGENCE_FACTOR * 2])
def test_a_final_evaluation_that_blew_up_is_diverged_at_the_last_step(test_loss: float) -> None:
    history = record([2.3] * 30, test_loss=test_loss, test_acc=0.1)
    assert history.status == "diverged" and history.diverged_at == 29
    expected = "the test loss became non-finite" if not math.isfinite(test_loss) else "more than 100 times its first value"
    assert expected in history.divergence_cause()


def test_learned_nothing_needs_chance_accuracy_and_a_loss_near_ln_c() -> None:
    stuck = record([2.3] * 30, test_loss=LN10, test_acc=0.1)
    assert stuck.status == "learned nothing" and stuck.learned_nothing
    assert stuck.outcome() == "learned nothing (10.0% test accuracy, loss at ln 10)"
    assert "learned nothing in 1 epochs (10.0% test accuracy, loss at ln 10)" in stuck.summary()
    worse = record([2.3] * 30, test_loss=41.7, test_acc=0.148)
    assert worse.outcome() == "learned nothing (14.8% test accuracy, test loss 41.7, against ln 10 = 2.30)"
    assert record([2.3] * 30, test_loss=LN10, test_acc=0.16).status == "completed", "above 1.5 times chance"
    assert record([2.3] * 30, test_loss=NOTHING_LOSS_FRACTION * LN10 - 0.01, test_acc=0.1).status == "completed"
    # two classes: chance plus the margin (55 %), not 1.5 times chance (75 %)
    assert record([0.7] * 30, test_loss=math.log(2), test_acc=0.5 + CHANCE_MARGIN, classes=2).status == "learned nothing"
    assert record([0.7] * 30, test_loss=math.log(2), test_acc=0.6, classes=2).status == "completed"
    assert record([2.3] * 30, test_loss=LN10, test_acc=0.1, classes=None).status == "completed", "without a class count"
    other_loss = record([2.3] * 30, test_loss=LN10, test_acc=0.1)
    other_loss.config["loss"], other_loss.status = "half_mse", "running"
    other_loss.conclude()
    assert other_loss.status == "completed", "ln C means nothing for a loss other than cross-entropy"


def test_divergence_comes_before_stopping_and_stopping_before_learned_nothing() -> None:
    history = History(config={"classes": 10})
    history.steps["loss"] = [2.3] * 10 + [1e9] * 10
    history.conclude(stopped=True)
    assert history.status == "diverged"
    history = History(config={"classes": 10})
    history.steps["loss"], history.epochs["test_loss"], history.epochs["test_acc"] = [2.3] * 5, [LN10], [0.1]
    history.conclude(stopped=True)
    assert history.status == "stopped"
    history = History(status="diverged", diverged_at=3)
    history.steps["loss"] = [2.3, 2.4, 2.5, math.nan]
    history.conclude()
    assert history.diverged_at == 3 and history.divergence_cause() == "the loss became non-finite"


# --- real runs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion() -> Dataset:
    return load_fashion_mnist(train_size=2000, test_size=1000, device="cpu")


def train(trainer, optimizer_class, data: Dataset, **hyper) -> History:
    dldna.set_seed(0)
    model = MLP(hidden=(128, 64))
    return trainer(model, optimizer_class(model.parameters(), **hyper), data, epochs=2, batch_size=128, progress=False)


@needs_fashion_mnist
@pytest.mark.parametrize("trainer", [fit, fit_fast])
def test_real_runs_adam_blows_up_sgd_gets_stuck_and_a_good_setting_completes(fashion: Dataset, trainer) -> None:
    blown = train(trainer, Adam, fashion, lr=1e6)
    assert blown.status == "diverged" and all(math.isfinite(loss) for loss in blown.steps["loss"]), "finite, yet diverged"
    assert blown.diverged_at is not None and blown.num_steps == 2 * 16, "the rule reads the run; it does not end it"
    assert blown.outcome() == f"diverged at step {blown.diverged_at}"
    stuck = train(trainer, SGD, fashion, lr=0.6, momentum=0.9)
    assert stuck.status == "learned nothing" and abs(stuck.epochs["test_loss"][-1] - LN10) < 0.05
    assert stuck.final_test_acc == pytest.approx(0.1, abs=0.02)
    assert stuck.outcome().startswith("learned nothing (10.0% test accuracy, loss at ln 10")
    good = train(trainer, Adam, fashion, lr=1e-3)
    assert good.status == "completed" and good.final_test_acc > 0.6


@needs_fashion_mnist
def test_sweep_reports_by_the_same_rules(fashion: Dataset) -> None:
    dldna.set_seed(0)
    adam = sweep(MLP(hidden=(128, 64)), fashion, "adam", [{"lr": 1e6}, {"lr": 1e-3}], epochs=2, batch_size=128)
    assert [run.status for run in adam] == ["diverged", "completed"]
    alone = train(fit, Adam, fashion, lr=1e6)
    assert adam[0].diverged_at == alone.diverged_at
    dldna.set_seed(0)
    (stuck,) = sweep(MLP(hidden=(128, 64)), fashion, "sgd", [{"lr": 0.6, "momentum": 0.9}], epochs=2, batch_size=128)
    assert stuck.status == "learned nothing" and stuck.config["classes"] == 10


# --- the progress bar -----------------------------------------------------------------------------------------


def blobs(n_train: int = 256, n_test: int = 64) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 4
        return centres[labels] + 0.7 * torch.randn(n, 2, generator=generator), labels

    return Dataset("blobs", *sample(n_train), *sample(n_test), ("a", "b", "c", "d"), (0.0,), (1.0,))


@pytest.fixture
def every_update_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm draws at every update (not at most every 0.1 s), so what a bar shows does not depend on the machine's
    speed; the environment does not turn bars off."""
    import tqdm.auto
    import tqdm.std

    monkeypatch.setattr(tqdm.auto, "tqdm", functools.partial(tqdm.std.tqdm, mininterval=0))
    monkeypatch.setattr(run_module, "PROGRESS_POSTFIX_EVERY_S", 0.0)
    monkeypatch.delenv("DLDNA_PROGRESS", raising=False)


class Slow(Callback):
    """Makes every step last ``seconds``, so that a tiny run takes long enough to show a bar."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, state: TrainState) -> None:
        time.sleep(self.seconds)


def run_blobs(**options) -> History:
    dldna.set_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 4))
    return fit(model, SGD(model.parameters(), lr=0.1), blobs(), epochs=1, batch_size=16, **options)


def test_a_long_run_shows_a_bar_that_advances_within_the_epoch(
    every_update_drawn: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(run_module, "PROGRESS_DELAY_S", 0.3)
    run_blobs(callbacks=[Slow(0.05)])  # 16 steps, 0.8 s: the bar appears after about six
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "acc=" in err
    shown = {int(n) for n in re.findall(r"\| *(\d+)/16 \[", err)}
    assert shown & set(range(2, 16)), f"the bar never showed a step inside the epoch: {sorted(shown)}"
    assert min(shown) >= 2, f"the bar appeared before the run had taken {run_module.PROGRESS_DELAY_S} s: {sorted(shown)}"


def test_no_bar_for_a_short_run_nor_with_dldna_progress_0(
    every_update_drawn: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    run_blobs()  # a fraction of a second: under PROGRESS_DELAY_S
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("DLDNA_PROGRESS", "0")
    monkeypatch.setattr(run_module, "PROGRESS_DELAY_S", 0.0)
    run_blobs(callbacks=[Slow(0.01)])
    assert capsys.readouterr().err == ""
    run_blobs(progress=True)
    assert "loss=" in capsys.readouterr().err, "progress=True shows the bar whatever the environment says"


def test_sweep_shows_its_progress_too(every_update_drawn: None, capsys: pytest.CaptureFixture) -> None:
    dldna.set_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 4))
    sweep(model, blobs(), "sgd", [{"lr": 0.1}, {"lr": 0.2}], epochs=1, batch_size=16, progress=True)
    err = capsys.readouterr().err
    assert "16/16" in err and "training=2/2" in err and "median loss=" in err
