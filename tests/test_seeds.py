"""Several seeds of one experiment: repeat, the spread of a metric, when a difference may be called one, the
sizes of the book's experiments in one place, and the figure that shows the spread."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

import dldna
from dldna.book.figures import matplotlib_problems
from dldna.config import EXPERIMENTS, Size
from dldna.history import History
from dldna.train import Spread, repeat, separated, spread
from dldna.viz import plot_spread


def run_with(accuracies: list[float], diverged: bool = False) -> History:
    history = History(steps_per_epoch=4)
    history.steps["loss"] = [2.3, 1.5, 1.0, 0.8] * len(accuracies)
    history.epochs["test_acc"] = accuracies
    history.status = "diverged" if diverged else "completed"
    history.diverged_at = 3 if diverged else None
    return history


def test_repeat_seeds_each_run_so_that_runs_differ_only_by_the_seed() -> None:
    drawn = repeat(lambda seed: run_with([torch.rand(()).item()]), 3)
    again = repeat(lambda seed: run_with([torch.rand(()).item()]), [0, 1, 2])
    assert [h.final_test_acc for h in drawn] == [h.final_test_acc for h in again]
    assert len({h.final_test_acc for h in drawn}) == 3
    with pytest.raises(ValueError, match="at least one seed"):
        repeat(lambda seed: run_with([0.5]), [])


def test_spread_gives_mean_sample_std_and_range_and_counts_a_diverged_seed_as_zero() -> None:
    values = spread([run_with([0.5, 0.80]), run_with([0.6, 0.84]), run_with([0.7, 0.82])])
    assert values.mean == pytest.approx(0.82) and values.std == pytest.approx(0.02)
    assert (values.low, values.high) == (0.80, 0.84)
    assert f"{values:.1%}" == "82.0% ± 2.0%"
    assert spread([run_with([0.9], diverged=True)]).values == (0.0,)
    assert Spread((0.5,)).std == 0.0


def test_a_difference_is_called_one_only_when_the_seeds_do_not_overlap() -> None:
    assert separated(Spread((0.85, 0.86, 0.87)), Spread((0.80, 0.82, 0.84)))
    assert not separated(Spread((0.85, 0.86, 0.87)), Spread((0.80, 0.82, 0.855)))


def test_sizes_describe_what_ran_and_unknown_experiments_name_the_table() -> None:
    assert Size(None, None, 10, 3).describe() == "all 60,000 training and all 10,000 test images, 10 epochs, 3 seeds"
    assert Size(2_000, 1_000, 1).describe() == "2,000 training and 1,000 test images, 1 epoch, one seed"
    with pytest.raises(KeyError, match="EXPERIMENTS"):
        dldna.budget("cpu").size("no.such-experiment")


def test_every_declared_experiment_has_both_budgets_and_sane_sizes() -> None:
    for name, sizes in EXPERIMENTS.items():
        assert set(sizes) == {"cpu", "full"}, name
        for size in sizes.values():
            assert size.epochs >= 1 and size.seeds >= 1, name
            assert size.train is None or size.train > 0, name


def test_the_spread_figure_shows_a_band_per_setting_and_is_readable() -> None:
    groups = {"A": [run_with([0.5, 0.8]), run_with([0.6, 0.82])], "B": [run_with([0.4, 0.7]), run_with([0.5], diverged=True)]}
    fig = plot_spread(groups, title="Two settings")
    ax_loss, ax_acc = fig.axes
    assert len(ax_acc.collections) == 2 and len(ax_loss.collections) == 2  # one band per setting and panel
    labels = [text.get_text() for text in ax_acc.get_legend().get_texts()]
    assert labels[0].startswith("A: 81.0% ± 1.4% (2 seeds)") and "1 diverged" in labels[1]
    assert matplotlib_problems(fig) == []
    assert math.isclose(ax_acc.lines[0].get_ydata()[0], 55.0)
    plt.close(fig)
