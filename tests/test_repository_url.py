"""The repository is named once, in _config.yml; every other mention of it (README, CONTRIBUTING, pyproject,
the chapters' install cells, the Colab edition, Colab links) must agree with that one."""

from __future__ import annotations

import re
import subprocess

from tests.test_notebooks import REPOSITORY, ROOT

OWNER, NAME = REPOSITORY.removeprefix("https://github.com/").split("/")[:2]
MENTION = re.compile(r"(?://github\.com|colab\.research\.google\.com/github)/([\w.-]+)/([\w.-]+)")
THIRD_PARTY: set[tuple[str, str]] = set()
"""Other projects' repositories that the book links to on purpose (none today)."""


def tracked_text_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [name for name in listed if (ROOT / name).is_file() and not name.startswith("_vendor/") and name.endswith((".md", ".toml", ".yml", ".ipynb", ".py", ".txt", "Makefile"))]


def test_the_config_names_a_github_repository() -> None:
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY


def test_every_mention_of_the_book_repository_matches_the_config() -> None:
    mentions = 0
    for name in tracked_text_files():
        text = (ROOT / name).read_text(encoding="utf-8", errors="ignore")
        for owner, repo in MENTION.findall(text):
            if (owner, repo) in THIRD_PARTY:
                continue
            mentions += 1
            assert (owner, repo.removesuffix(".git")) == (OWNER, NAME), f"{name} names {owner}/{repo}, _config.yml names {OWNER}/{NAME}"
    assert mentions >= 4, "README, CONTRIBUTING, pyproject and the chapters should all name the repository"
