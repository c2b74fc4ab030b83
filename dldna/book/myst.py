"""From the book's MyST Markdown to the plain Markdown that Jupyter and Colab render.

The chapters are written for the website: ``{cite:p}`` roles, a ``{bibliography}`` directive, admonitions and
``{glue:text}`` roles, which mean nothing to a notebook viewer. These functions rewrite them into what a
notebook shows well: author-year citations with the chapter's references as a list, block quotes with a bold
title, and ``{{name:format}}`` placeholders that :func:`dldna.book.fill` turns into the reader's own numbers.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

import latexcodec  # noqa: F401  (registers the "latex" codec used to decode BibTeX fields)

ROLE = re.compile(r"\{(?P<name>[a-z]+(?::[a-z]+)?)\}`(?P<body>[^`]*)`")
GLUE_ROLES = ("glue", "glue:text", "glue:md")
DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}[ \t]*(?P<argument>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$\n?",
    re.M | re.S,
)
LABEL_LINE = re.compile(r"^\([\w.:-]+\)=[ \t]*\n", re.M)
ADMONITIONS = {
    "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important", "warning": "Warning",
    "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error", "seealso": "See also",
}
MYST_ONLY = re.compile(r"\{[a-z]+(?::[a-z]+)?\}`|^(`{3,}|:{3,})\{|^\([\w.:-]+\)=\s*$", re.M)
"""Anything a notebook viewer would show as raw markup: a role, a directive fence or a label line."""


@dataclass(frozen=True)
class Reference:
    """One BibTeX entry, reduced to what a reader needs: who, when, what and where."""

    key: str
    authors: tuple[str, ...]
    year: str
    title: str
    venue: str
    url: str

    def in_text(self) -> str:
        """``Kingma and Ba``, ``Xiao et al.``: the authors as a sentence names them."""
        surnames = [author.split(",")[0] for author in self.authors] or ["Anonymous"]
        if len(surnames) == 1:
            return surnames[0]
        if len(surnames) == 2:
            return f"{surnames[0]} and {surnames[1]}"
        return f"{surnames[0]} et al."

    def entry(self) -> str:
        """The entry of the reference list, in Markdown."""
        names = [" ".join(reversed([part.strip() for part in author.split(",", 1)])) for author in self.authors]
        who = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else "Anonymous"
        title = f"[{self.title}]({self.url})" if self.url else self.title
        return f"{who} ({self.year}). *{title}*." + (f" {self.venue}." if self.venue else "")


def _plain(text: str) -> str:
    """A BibTeX field as plain text: LaTeX accents decoded, grouping braces removed, spaces folded."""
    decoded = codecs.decode(text, "ulatex")
    return " ".join(decoded.replace("{", "").replace("}", "").split())


def load_references(paths: list[Path]) -> dict[str, Reference]:
    """Every entry of the BibTeX files ``paths``, by key."""
    from pybtex.database import parse_file

    references: dict[str, Reference] = {}
    for path in paths:
        for key, entry in parse_file(str(path), bib_format="bibtex").entries.items():
            fields = entry.fields
            authors = tuple(_plain(str(person)) for person in entry.persons.get("author", ()))
            venue = next((fields[name] for name in ("journal", "booktitle", "institution", "publisher", "note") if name in fields), "")
            url = fields.get("url") or (f"https://doi.org/{fields['doi']}" if "doi" in fields else "")
            references[key] = Reference(key, authors, fields.get("year", "n.d."), _plain(fields.get("title", key)), _plain(venue), url)
    return references


def cited_keys(markdown: str) -> list[str]:
    """The citation keys of every ``{cite:...}`` role in ``markdown``, in order of first appearance."""
    keys: list[str] = []
    for match in ROLE.finditer(markdown):
        if match["name"].startswith("cite"):
            keys += [key.strip() for key in match["body"].split(",") if key.strip() not in keys]
    return keys


def _citation(kind: str, keys: list[str], references: dict[str, Reference]) -> str:
    missing = [key for key in keys if key not in references]
    if missing:
        raise KeyError(f"citation keys not in the bibliography: {missing}")
    cited = [references[key] for key in keys]
    if kind == "cite:t":
        return "; ".join(f"{ref.in_text()} ({ref.year})" for ref in cited)
    return "(" + "; ".join(f"{ref.in_text()}, {ref.year}" for ref in cited) + ")"


def reference_list(keys: list[str], references: dict[str, Reference]) -> str:
    """A ``References`` section listing ``keys``, sorted by first author and year."""
    entries = sorted((references[key] for key in keys), key=lambda ref: (ref.in_text().lower(), ref.year))
    return "## References\n\n" + "\n".join(f"- {ref.entry()}" for ref in entries) + "\n"


def _admonition(name: str, argument: str, body: str) -> str:
    title = argument.strip() if name == "admonition" else ADMONITIONS[name] + (f": {argument.strip()}" if argument.strip() else "")
    lines = [line for line in body.strip("\n").splitlines() if not line.startswith(":")]
    return "\n".join([f"> **{title}.**", ">", *(f"> {line}".rstrip() for line in lines)]) + "\n"


def _figure(argument: str, body: str) -> str:
    options = [line for line in body.splitlines() if line.startswith(":")]
    alt = next((line.split(":", 2)[2].strip() for line in options if line.startswith(":alt:")), "")
    caption = "\n".join(line for line in body.splitlines() if not line.startswith(":")).strip()
    return f"![{alt or caption}]({argument.strip()})\n\n*{caption}*\n" if caption else f"![{alt}]({argument.strip()})\n"


def to_notebook_markdown(markdown: str, references: dict[str, Reference], chapter_keys: list[str]) -> str:
    """``markdown`` with every MyST-only construct rewritten for a notebook viewer; ``chapter_keys`` are the
    citations of the whole notebook, which its ``{bibliography}`` directive lists."""

    def directive(match: re.Match[str]) -> str:
        name, argument, body = match["name"], match["argument"], match["body"]
        if name == "bibliography":
            return reference_list(chapter_keys, references) if chapter_keys else ""
        if name in ADMONITIONS or name == "admonition":
            return _admonition(name, argument, to_notebook_markdown(body, references, chapter_keys))
        if name == "figure":
            return _figure(argument, body)
        if name == "math":
            return "$$\n" + body.strip() + "\n$$\n"
        raise ValueError(f"no notebook form for the directive {{{name}}} yet: add one to dldna.book.myst")

    def role(match: re.Match[str]) -> str:
        name, body = match["name"], match["body"]
        if name in GLUE_ROLES:
            return "{{" + body + "}}"
        if name in ("cite:p", "cite:t", "cite"):
            return _citation("cite:t" if name == "cite:t" else "cite:p", [k.strip() for k in body.split(",")], references)
        if name == "math":
            return f"${body}$"
        if name in ("ref", "numref", "doc", "eq", "term"):
            text = re.match(r"(.*?)\s*<[^>]*>$", body)
            return text[1] if text else body
        raise ValueError(f"no notebook form for the role {{{name}}} yet: add one to dldna.book.myst")

    converted = DIRECTIVE.sub(directive, markdown)
    converted = LABEL_LINE.sub("", converted)
    return ROLE.sub(role, converted)
