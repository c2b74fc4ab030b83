"""What a chapter asks of the book around it (dldna.book): glued values, paragraphs filled with the reader's
numbers, claims the run must bear out, readable figures, and the MyST-to-Markdown rewriting of the Colab
edition."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import plotly.graph_objects as go
import pytest
from IPython.core.interactiveshell import InteractiveShell

import dldna.book as book
from dldna.book import ClaimFailed, claim, fill, glue
from dldna.book.figures import (
    UnreadableFigure,
    _CheckFiguresAtCellEnd,
    check_cell_figures,
    matplotlib_problems,
    note_plotly_figure,
    plotly_problems,
)
from dldna.book.myst import MYST_ONLY, Reference, cited_keys, load_references, reference_list, to_notebook_markdown

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(book.STRICT_ENV, "1")


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(book.STRICT_ENV, raising=False)


def test_fill_formats_glued_values_and_marks_missing_ones() -> None:
    values = {"loss": 0.123456, "acc": 0.8912, "n": "1,234"}
    text = fill(r"loss {{loss:.3f}}, accuracy {{acc:.1%}} on {{n}} images, $\frac{1}{2}$, {{later:.2f}}", values)
    assert text == r"loss 0.123, accuracy 89.1% on 1,234 images, $\frac{1}{2}$, […]"


def test_glue_records_the_value_and_refuses_non_finite_numbers_in_the_build(strict: None) -> None:
    glue("test_value", 2.5)
    assert book.GLUED["test_value"] == 2.5
    with pytest.raises(ValueError, match="not finite"):
        glue("test_nan", math.nan)
    glue("test_text", "nan is fine as text")


def test_glue_accepts_non_finite_numbers_outside_the_build(lenient: None) -> None:
    glue("test_inf", math.inf)
    assert book.GLUED["test_inf"] == math.inf


def test_a_contradicted_claim_stops_the_build(strict: None) -> None:
    assert claim(True, "Adam converges faster.") is True
    with pytest.raises(ClaimFailed, match="Adam converges faster"):
        claim(False, "Adam converges faster.")


def test_a_contradicted_claim_is_marked_for_the_reader(lenient: None, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(book, "_show_markdown", shown.append)
    assert claim(True, "Lion moves every weight by lr.") is True
    assert claim(False, "Adam converges faster.") is False
    assert shown[0] == "Lion moves every weight by lr."
    assert "Not borne out by this run" in shown[1] and "Adam converges faster." in shown[1]


def test_matplotlib_figures_need_a_title_and_axis_labels() -> None:
    fig, (left, right) = plt.subplots(1, 2, sharey=True)
    left.plot([1, 2], [3, 4])
    right.plot([1, 2], [4, 3])
    problems = matplotlib_problems(fig)
    assert "a title (fig.suptitle(...) or a title on every plot)" in problems
    assert "the x label of plot 1" in problems and "the y label of plot 2" in problems
    fig.suptitle("Two runs")
    left.set(xlabel="step", ylabel="loss")  # the right plot shares the y axis, so its label counts for both
    right.set_xlabel("step")
    assert matplotlib_problems(fig) == []
    plt.close(fig)


def test_one_label_at_the_edge_of_a_row_of_panels_labels_the_row() -> None:
    fig, axes = plt.subplots(2, 2)
    for ax in axes.flat:
        ax.plot([1, 2], [3, 4])
        ax.set_title("panel")
    axes[0, 0].set_ylabel("density")
    axes[1, 0].set_xlabel("value")
    axes[1, 1].set_xlabel("value")
    assert matplotlib_problems(fig) == ["the y label of plot 3 ('panel')", "the y label of plot 4 ('panel')"]
    plt.close(fig)


def test_images_without_axes_need_only_a_title() -> None:
    fig, ax = plt.subplots()
    ax.imshow([[0, 1], [1, 0]])
    ax.axis("off")
    assert matplotlib_problems(fig) == []
    plt.close(fig)


def test_plotly_figures_need_a_title_and_axis_titles() -> None:
    figure = go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).to_plotly_json()
    assert plotly_problems(figure) == ["a title (layout.title or subplot titles)", "the title of xaxis", "the title of yaxis"]
    labelled = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout=dict(title="Loss", xaxis_title="step", yaxis_title="loss"))
    assert plotly_problems(labelled.to_plotly_json()) == []


def test_the_end_of_cell_check_fails_the_cell_and_keeps_its_displayed_value(strict: None) -> None:
    shell = InteractiveShell.instance()
    shell.ast_transformers.append(_CheckFiguresAtCellEnd())
    try:
        result = shell.run_cell("import matplotlib.pyplot as plt\n21 * 2")
        assert result.success and result.result == 42
        result = shell.run_cell("fig, ax = plt.subplots()\nax.plot([1, 2])\n'drawn'")
        assert isinstance(result.error_in_exec, UnreadableFigure)
        assert plt.get_fignums() == [], "an unreadable figure must not reach the page"
    finally:
        shell.ast_transformers.pop()


def test_an_unreadable_plotly_figure_is_reported_at_the_end_of_its_cell(strict: None) -> None:
    note_plotly_figure(go.Figure(go.Scatter(x=[1], y=[1]), layout=dict(title="Loss")).to_plotly_json())
    with pytest.raises(UnreadableFigure, match="the title of xaxis"):
        check_cell_figures()
    check_cell_figures()  # reported once, then forgotten


REFERENCES = {
    "solo": Reference("solo", ("Xiao, Han",), "2017", "Fashion", "arXiv", ""),
    "pair": Reference("pair", ("Kingma, Diederik P.", "Ba, Jimmy"), "2015", "Adam", "ICLR", "https://arxiv.org/abs/1412.6980"),
    "many": Reference("many", ("Ioffe, Sergey", "Szegedy, Christian", "Other, A."), "2015", "BN", "ICML", ""),
}


def test_citations_read_as_author_and_year() -> None:
    text = "Adam {cite:p}`pair`, as {cite:t}`many` showed; see {cite:p}`solo,pair`."
    keys = cited_keys(text)
    assert keys == ["pair", "many", "solo"]
    converted = to_notebook_markdown(text, REFERENCES, keys)
    assert converted == "Adam (Kingma and Ba, 2015), as Ioffe et al. (2015) showed; see (Xiao, 2017; Kingma and Ba, 2015)."


def test_the_bibliography_becomes_a_reference_list_of_the_chapter() -> None:
    converted = to_notebook_markdown("```{bibliography}\n:filter: docname in docnames\n```\n", REFERENCES, ["pair", "solo"])
    assert converted == reference_list(["pair", "solo"], REFERENCES)
    assert converted.splitlines()[2] == "- Diederik P. Kingma and Jimmy Ba (2015). *[Adam](https://arxiv.org/abs/1412.6980)*. ICLR."


def test_admonitions_labels_and_glue_roles_become_plain_markdown() -> None:
    source = "(sec-x)=\n## Title\n\n:::{note}\nRead {glue:text}`acc:.1%` here.\n:::\n\n```{warning} Careful\nHot.\n```\n"
    converted = to_notebook_markdown(source, REFERENCES, [])
    assert converted == "## Title\n\n> **Note.**\n>\n> Read {{acc:.1%}} here.\n\n> **Warning: Careful.**\n>\n> Hot.\n"
    assert not MYST_ONLY.search(converted)


def test_an_unknown_directive_or_citation_is_an_error_not_raw_markup() -> None:
    with pytest.raises(ValueError, match="margin"):
        to_notebook_markdown("```{margin}\nx\n```\n", REFERENCES, [])
    with pytest.raises(KeyError, match="nobody"):
        to_notebook_markdown("{cite:p}`nobody`", REFERENCES, [])


def test_every_citation_of_the_chapters_is_in_the_bibliography() -> None:
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    references = load_references([ROOT / name for name in config["bibtex_bibfiles"]])
    cited = {key for path in (ROOT / "chapters").rglob("*.ipynb") for key in cited_keys(path.read_text())}
    assert cited and cited <= set(references), f"unknown keys: {sorted(cited - set(references))}"
    assert all(ref.title and ref.year and ref.authors for ref in references.values())


def test_a_figure_drawn_under_the_book_builds_environment_reaches_the_output() -> None:
    """The build's environment (the Makefile's BOOK_ENV) must leave the kernel's inline backend alone: with
    MPLBACKEND=Agg, for example, a figure produces no output at all and vanishes from the website."""
    import os
    import re

    import nbformat
    from nbclient import NotebookClient

    book_env = re.search(r"^BOOK_ENV := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert book_env, "the Makefile defines the book build's environment in BOOK_ENV"
    env = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    env.update(pair.split("=", 1) for pair in book_env[1].split())
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import dldna\ndldna.setup_notebook()\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2])\nax.set(title='t', xlabel='x', ylabel='y')"
    )])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute(env=env)
    outputs = notebook.cells[0].outputs
    assert any("image/png" in output.get("data", {}) for output in outputs), "the figure produced no image"
