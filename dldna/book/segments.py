"""The translatable pieces of the book's MyST Markdown, and the same Markdown with those pieces replaced.

A translation catalog is keyed by the English text of each piece a reader sees as one unit: a paragraph, a
heading, a list item's paragraph, a table cell, a definition-list term, an admonition's title, a figure's
caption or a block of raw HTML with text in it. :func:`segments` finds them with the parser the book itself
uses (markdown-it with MyST's extensions), so a piece is exactly what the website renders as one block;
:func:`translate_markdown` writes the Markdown back with every piece replaced by its translation and leaves
everything else (code, display math, labels, directives' options, the Markdown around the pieces) as it was.

A piece's key folds its line breaks into spaces, so re-wrapping an English paragraph does not make its
translation look out of date; any other change to its words does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from markdown_it.token import Token

EXTENSIONS = ("dollarmath", "amsmath", "colon_fence", "deflist", "substitution")
"""The MyST extensions of the book (``parse.myst_enable_extensions`` in ``_config.yml``)."""

ADMONITIONS = frozenset(
    {"admonition", "note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso",
     "dropdown", "margin", "sidebar", "topic", "epigraph"}
)
"""Directives whose body is Markdown and whose argument, when present, is a title a reader sees."""
CAPTIONED = frozenset({"figure", "glue:figure", "table", "list-table"})
"""Directives whose argument is a path, a key or a title and whose body is Markdown (a caption, a list table)."""
VERBATIM = frozenset(
    {"math", "code-block", "code", "code-cell", "bibliography", "tableofcontents", "raw", "eval-rst", "glue",
     "glue:any", "glue:math", "glue:text", "glue:md", "image", "include", "literalinclude", "csv-table"}
)
"""Directives that hold no prose (or prose that must not change): left as they are."""

DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.-]+)\}[ \t]*(?P<argument>.*)$")
CONTAINER = re.compile(r"^[ \t]*(?:>[ \t]?[ \t]*)*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?(?:#{1,6}[ \t]+|:[ \t]+)?")
"""What precedes a block's text on its first line: indentation, quote markers, a list marker, a heading's
hashes or a definition's colon (used where the text itself cannot be found on the line)."""
OPTION = re.compile(r"^:[\w-]+:")
TAG = re.compile(r"<[^>]*>")
CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
URL = re.compile(r"\]\([^)]*\)|https?://\S+")
LETTERS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Segment:
    """One translatable piece: ``text`` is its key (the English, line breaks folded) and ``kind`` says what it is
    (``paragraph``, ``heading``, ``list item``, ``table cell``, ``term``, ``definition``, ``quote``, ``title``,
    ``caption`` or ``html``), which the catalogs show translators beside it."""

    text: str
    kind: str


@dataclass
class _Block:
    """Source lines ``start:end`` of a Markdown text that hold ``segments``; ``render`` turns their translations
    (in order) into the lines that replace them."""

    start: int
    end: int
    segments: list[Segment]
    render: Callable[[list[str]], list[str]]


@cache
def _parser(extensions: tuple[str, ...]):  # noqa: ANN202 (markdown-it's parser class is internal to myst-parser)
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions=set(extensions)), RendererHTML)


def fold(text: str) -> str:
    """``text`` with its line breaks (and the spaces around them) folded into single spaces: a piece's key."""
    return re.sub(r"[ \t]*\n[ \t]*", " ", text.strip())


def has_prose(text: str) -> bool:
    """Does ``text`` hold words to translate once code, roles, math, links' targets and HTML tags are removed?"""
    for pattern in (CODE, ROLE, MATH, URL, TAG):
        text = pattern.sub(" ", text)
    return bool(LETTERS.search(text))


def _prefix(line: str, text: str) -> str:
    """What precedes ``text`` (a block's first line of text) on its source ``line``."""
    body, stripped = text.strip(), line.rstrip()
    if body and stripped.endswith(body):
        return stripped[: len(stripped) - len(body)]
    return CONTAINER.match(line)[0]


def _continuation(prefix: str) -> str:
    """The prefix of a block's later lines: its first line's prefix with list markers and hashes blanked."""
    return re.sub(r"[^>\s]", " ", prefix)


def _with_prefix(text: str, prefix: str) -> list[str]:
    lines = text.split("\n")
    following = _continuation(prefix)
    return [prefix + lines[0]] + [(following + line).rstrip() if line.strip() else following.rstrip() for line in lines[1:]]


def _one_line(text: str) -> str:
    return " ".join(text.split("\n"))


def _text_block(lines: list[str], token: Token, inline: Token, kind: str) -> _Block | None:
    """A paragraph, a heading or a term: the lines of ``token`` hold the text of ``inline``."""
    if not has_prose(inline.content):
        return None
    start = token.map[0]
    end = max(token.map[1], start + 1)
    prefix = _prefix(lines[start], inline.content.split("\n")[0])
    if kind == "heading" or kind == "term":
        underline = lines[start + 1 : end] if kind == "heading" and end - start == 2 else []  # a setext heading
        return _Block(start, end, [Segment(fold(inline.content), kind)], lambda t: [prefix + _one_line(t[0]), *underline])
    return _Block(start, end, [Segment(fold(inline.content), kind)], lambda t: _with_prefix(t[0], prefix))


def _table_block(lines: list[str], tokens: list[Token], index: int) -> tuple[_Block | None, int]:
    """A table starting at ``tokens[index]``: every cell with prose is a segment; returns the block and the index
    of the table's closing token."""
    rows: list[list[str]] = []
    position = index
    while tokens[position].type != "table_close":
        token = tokens[position]
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline":
            rows[-1].append(token.content)
        position += 1
    start, end = tokens[index].map
    cells = [(row, column) for row, cells_ in enumerate(rows) for column, cell in enumerate(cells_) if has_prose(cell)]
    if not cells:
        return None, position
    prefix = re.match(r"^[ \t>]*", lines[start])[0]
    delimiter = lines[start + 1]

    def render(translations: list[str]) -> list[str]:
        table = [list(row) for row in rows]
        for (row, column), text in zip(cells, translations):
            table[row][column] = _one_line(text)
        written = [prefix + "| " + " | ".join(cell.replace("|", r"\|") for cell in row) + " |" for row in table]
        return [written[0], delimiter, *written[1:]]

    return _Block(start, end, [Segment(fold(rows[r][c]), "table cell") for r, c in cells], render), position


def _directive_block(lines: list[str], token: Token) -> _Block | None:
    """A MyST directive: its title (when it has one a reader sees) and the pieces of its Markdown body."""
    match = DIRECTIVE.match(token.info.strip())
    if not match:
        return None  # a code block
    name, argument = match["name"], match["argument"].strip()
    if name in VERBATIM:
        return None
    if name not in ADMONITIONS and name not in CAPTIONED:
        raise ValueError(
            f"the directive {{{name}}} is not known to dldna.book.segments: add it to ADMONITIONS or CAPTIONED "
            "(its body is Markdown to translate) or to VERBATIM (left as it is)"
        )
    body = token.content.split("\n")
    options = 0
    if body and body[0].strip() == "---":
        options = next((i for i in range(1, len(body)) if body[i].strip() == "---"), 0) + 1
    while options < len(body) and OPTION.match(body[options]):
        options += 1
    markdown = "\n".join(body[options:])
    inner = _blocks(markdown)
    titled = name in ADMONITIONS and has_prose(argument)
    segments = ([Segment(fold(argument), "title")] if titled else []) + [
        Segment(s.text, "caption" if name in CAPTIONED and s.kind == "paragraph" else s.kind) for b in inner for s in b.segments
    ]
    if not segments:
        return None
    start, end = token.map
    opening = lines[start]
    prefix = _prefix(opening, token.markup + token.info)
    following = _continuation(prefix)
    closing = lines[end - 1 : end] if end - start > 1 and lines[end - 1].strip().startswith(token.markup) else []

    def render(translations: list[str]) -> list[str]:
        head = f"{prefix}{token.markup}{{{name}}} {_one_line(translations[0])}" if titled else opening
        translated_body = _render(markdown, inner, translations[int(titled) :]).split("\n") if markdown else []
        kept = body[:options] + translated_body
        while kept and not kept[-1].strip():
            kept.pop()
        return [head, *[(following + line).rstrip() for line in kept], *closing]

    return _Block(start, end, segments, render)


def _blocks(markdown: str, extensions: tuple[str, ...] = EXTENSIONS) -> list[_Block]:
    """The blocks of ``markdown`` that hold translatable pieces, in order."""
    lines = markdown.split("\n")
    tokens = _parser(extensions).parse(markdown)
    blocks: list[_Block] = []
    containers: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        block: _Block | None = None
        if token.type in ("bullet_list_open", "ordered_list_open", "blockquote_open", "dd_open"):
            containers.append(token.type)
        elif token.type in ("bullet_list_close", "ordered_list_close", "blockquote_close", "dd_close"):
            containers.pop()
        elif token.type == "paragraph_open":
            kind = {"bullet_list_open": "list item", "ordered_list_open": "list item", "blockquote_open": "quote",
                    "dd_open": "definition"}.get(containers[-1] if containers else "", "paragraph")
            block = _text_block(lines, token, tokens[index + 1], kind)
        elif token.type == "heading_open":
            block = _text_block(lines, token, tokens[index + 1], "heading")
        elif token.type == "dt_open":
            block = _text_block(lines, token, tokens[index + 1], "term")
        elif token.type == "table_open":
            block, index = _table_block(lines, tokens, index)
        elif token.type in ("fence", "colon_fence"):
            block = _directive_block(lines, token)
        elif token.type == "html_block" and has_prose(token.content):
            start, end = token.map
            prefix = _prefix(lines[start], token.content.split("\n")[0])
            block = _Block(start, end, [Segment(fold(token.content), "html")], lambda t, p=prefix: _with_prefix(t[0], p))
        if block is not None:
            blocks.append(block)
        index += 1
    return blocks


def _render(markdown: str, blocks: list[_Block], translations: list[str]) -> str:
    """``markdown`` with the pieces of ``blocks`` replaced by ``translations`` (one per piece, in order)."""
    lines = markdown.split("\n")
    replaced: list[tuple[int, int, list[str]]] = []
    position = 0
    for block in blocks:
        mine = translations[position : position + len(block.segments)]
        position += len(block.segments)
        if mine != [segment.text for segment in block.segments]:
            replaced.append((block.start, block.end, block.render(mine)))
    for start, end, new in reversed(replaced):
        lines[start:end] = new
    return "\n".join(lines)


def located_segments(markdown: str, extensions: tuple[str, ...] = EXTENSIONS) -> list[tuple[int, Segment]]:
    """Every translatable piece of ``markdown`` in reading order, with the line (1-based) its block starts on.
    Raises ``ValueError`` for a directive whose body it does not know how to treat."""
    return [(block.start + 1, segment) for block in _blocks(markdown, extensions) for segment in block.segments]


def segments(markdown: str, extensions: tuple[str, ...] = EXTENSIONS) -> list[Segment]:
    """Every translatable piece of ``markdown``, in reading order (see :func:`located_segments`)."""
    return [segment for _, segment in located_segments(markdown, extensions)]


def translate_markdown(
    markdown: str, translate: Callable[[Segment], str | None], extensions: tuple[str, ...] = EXTENSIONS
) -> str:
    """``markdown`` with each piece replaced by ``translate(piece)``; a piece it returns ``None`` for keeps its
    English, and a block none of whose pieces changed keeps its source lines exactly."""
    blocks = _blocks(markdown, extensions)
    translations = [translate(segment) or segment.text for block in blocks for segment in block.segments]
    return _render(markdown, blocks, translations)
