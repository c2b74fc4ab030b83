"""Every chapter proves its own claims: a sentence that says how one of its experiments turned out is shown
through ``dldna.book.claim(condition, sentence)``, which fails the book build when the run contradicts it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.test_notebooks import ROOT

CHAPTERS = sorted(path for path in (ROOT / "chapters").glob("*.ipynb"))
CLAIM = re.compile(r"\bclaim\(")
EXPERIMENT = re.compile(r"\b(?:fit|fit_fast|sweep|repeat|run_at_scale)\(")


def claims_and_experiments(path: Path) -> tuple[int, int]:
    code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    return sum(len(CLAIM.findall(source)) for source in code), sum(bool(EXPERIMENT.search(source)) for source in code)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_that_runs_experiments_checks_its_claims_about_them(path: Path) -> None:
    claims, experiments = claims_and_experiments(path)
    print(f"{path.stem}: {claims} claims checked, {experiments} cells that train")
    if experiments:
        assert claims >= 1, f"{path.stem} trains networks in {experiments} cells but checks no claim about them with claim()"
