"""Figures: what each plotting function draws from given runs and surfaces (no model is trained here)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dldna import init
from dldna.history import History
from dldna.landscape.surface import Surface
from dldna.viz import init as init_viz
from dldna.viz import norm as norm_viz
from dldna.viz.compare import markdown_table
from dldna.viz.landscape import plot_contour, plot_interpolation, plotly_surface
from dldna.viz.training import plot_runs, plotly_runs, smooth


def run(losses: list[float], accuracies: list[float], steps_per_epoch: int, diverged_at: int | None = None) -> History:
    history = History(steps_per_epoch=steps_per_epoch, status="completed" if diverged_at is None else "diverged", diverged_at=diverged_at)
    history.steps["loss"] = losses
    history.epochs["test_acc"] = accuracies
    return history


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_smooth_is_a_trailing_mean() -> None:
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 3), [1.0, 1.5, 2.0, 3.0])
    np.testing.assert_array_equal(smooth([5, 7], 1), [5.0, 7.0])
    assert len(smooth([], 4)) == 0


def test_runs_figures_mark_divergence_and_downsample() -> None:
    good = run(list(np.linspace(2.3, 0.5, 1000)), [0.6, 0.7, 0.8], steps_per_epoch=10)
    bad = run([2.3, 5.0, 80.0, float("inf")], [], steps_per_epoch=10, diverged_at=3)
    fig = plot_runs({"good": good, "bad": bad})
    ax_loss, ax_acc = fig.axes
    assert [line.get_xdata()[0] for line in ax_loss.get_lines() if line.get_linestyle() == ":"] == [4]
    assert "bad: diverged at step 3" in [text.get_text() for text in ax_acc.get_legend().get_texts()]
    np.testing.assert_allclose(ax_acc.get_lines()[0].get_ydata(), [60.0, 70.0, 80.0])

    interactive = plotly_runs({"good": good, "bad": bad}, max_points=50)
    loss_good, acc_good, loss_bad, _ = interactive.data
    assert len(loss_good.x) == 50 and loss_good.x[0] == 1 and loss_good.x[-1] == 1000
    assert loss_good.name == "good" and loss_bad.name == "bad (diverged at step 3)"
    np.testing.assert_allclose(acc_good.y, [60.0, 70.0, 80.0])


def plane(n: int = 5) -> Surface:
    axis = np.linspace(-1, 1, n)
    loss = 1 + axis[None, :] ** 2 + 2 * axis[:, None] ** 2
    return Surface(axes=(axis, axis), loss=loss, accuracy=np.full_like(loss, 0.5), samples=10)


def test_landscape_figures_draw_the_given_surface() -> None:
    surface = plane()
    path = np.array([[1.0, 1.0], [0.5, 0.2], [0.0, 0.0]])
    ax = plot_contour(surface, path=path, title="bowl")
    trajectory = next(line for line in ax.get_lines() if line.get_label() == "trajectory")
    np.testing.assert_array_equal(trajectory.get_xydata(), path)
    assert ax.get_title() == "bowl"
    figure = plotly_surface(surface, path=path, path_loss=np.array([4.0, 1.33, 1.0]))
    np.testing.assert_allclose(figure.data[0].z, np.log10(surface.loss))
    np.testing.assert_allclose(figure.data[1].z, np.log10([4.0, 1.33, 1.0]))
    line = Surface(axes=(np.linspace(0, 1, 3),), loss=np.array([1.0, 0.5, 0.8]), accuracy=np.array([0.1, 0.5, 0.3]), samples=10)
    interpolation = plot_interpolation({"a to b": line})
    np.testing.assert_allclose(interpolation.axes[1].get_lines()[0].get_ydata(), [10.0, 50.0, 30.0])
    with pytest.raises(ValueError, match="2-D plane"):
        plotly_surface(line)
    with pytest.raises(ValueError, match="must be 1-D"):
        plot_interpolation({"plane": surface})


def test_markdown_table_and_its_checks() -> None:
    table = markdown_table(["a", "b"], [[1, "x"], [2.5, "y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | y |"]
    with pytest.raises(ValueError, match="row"):
        markdown_table(["a", "b"], [[1]])


def test_initialisation_plots_have_labelled_axes():
    results = init.compare_schemes(["kaiming_normal", "xavier_normal"], depth=10, width=32, batch_size=16)
    fig = init_viz.plot_signal_propagation(results)
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    hist = init_viz.plot_activation_histograms(results["kaiming_normal"])
    assert len(hist.axes) == 5 and all(ax.get_xlabel() and ax.get_ylabel() for ax in hist.axes)


def test_activation_histograms_count_a_relu_spike_apart_from_the_bars():
    """Half a ReLU layer's values are exactly 0: drawn, that bar would flatten all others; the panel says its share."""
    relu = init.compare_schemes(["kaiming_normal"], depth=6, width=32, batch_size=64, activation="relu")["kaiming_normal"]
    tanh = init.compare_schemes(["xavier_normal"], depth=6, width=32, batch_size=64, activation="tanh")["xavier_normal"]
    fig = init_viz.plot_activation_histograms(relu, layers=[0, 5])
    for ax, index in zip(fig.axes, [0, 5]):
        values = np.asarray(relu.activation_samples[index])
        share = np.mean(values == 0)
        assert 0.3 < share < 0.7
        assert ax.get_ylabel() == "density of non-zero values"
        assert sum(patch.get_height() * patch.get_width() for patch in ax.patches) == pytest.approx(1.0)
        assert min(patch.get_x() for patch in ax.patches) >= values[values > 0].min() - 1e-9  # no bar at the spike
        assert [text.get_text() for text in ax.texts] == [f"{share:.0%} exactly 0\n(not drawn)"]
    plain = init_viz.plot_activation_histograms(tanh, layers=[0, 5])
    assert [ax.get_ylabel() for ax in plain.axes] == ["density", "density"] and not any(ax.texts for ax in plain.axes)


def test_plot_shared_statistics_has_four_labelled_panels():
    fig = norm_viz.plot_shared_statistics()
    assert len(fig.axes) == 4
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
