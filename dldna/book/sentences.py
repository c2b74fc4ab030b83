"""Sentences a notebook's code shows as prose, so that a translation can show them in its own language.

A chapter states what its run showed with ``claim(holds, f"...")`` and may display a sentence with
``Markdown(f"...")``; the reader sees each as a paragraph among the others. In a catalog such a sentence is
keyed by its *template*, the sentence as the code writes it with the f-string's fields kept
(``The loss is {loss:.3f}.``); its translation keeps the same fields. :func:`translate_code` puts the
translation into the code, so that a translated notebook shows it when it runs, and :func:`translate_shown`
into the outputs of a notebook that already ran, carrying over the values that run showed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from functools import cache

SHOWN_BY = {"claim": 1, "Markdown": 0}
"""The calls that show a sentence as prose, and the position of the sentence among their arguments."""


def _python(source: str) -> str | None:
    """``source`` as plain Python (IPython's magics rewritten), or ``None`` when it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    try:
        ast.parse(python)
    except SyntaxError:
        return None
    return python


def _sentence_nodes(python: str) -> list[ast.expr]:
    """The sentence arguments of every call in ``python`` that shows one."""
    found = []
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            position = SHOWN_BY.get(name)
            if position is not None and len(node.args) > position:
                found.append(node.args[position])
    return sorted(found, key=lambda node: (node.lineno, node.col_offset))


def _template(node: ast.expr, python: str) -> str | None:
    """The template of a sentence argument (a string or an f-string), ``None`` for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(value.value.replace("{", "{{").replace("}", "}}"))
            continue
        spec = value.format_spec.values if value.format_spec is not None else []
        if not all(isinstance(piece, ast.Constant) for piece in spec):
            return None
        conversion = f"!{chr(value.conversion)}" if value.conversion != -1 else ""
        formatted = "".join(piece.value for piece in spec)
        parts.append("{" + ast.unparse(value.value) + conversion + (f":{formatted}" if formatted else "") + "}")
    return "".join(parts)


def templates(source: str) -> list[str]:
    """The templates of the sentences a code cell shows, in order."""
    python = _python(source)
    if python is None:
        return []
    return [template for node in _sentence_nodes(python) if (template := _template(node, python)) is not None]


def _fields(template: str) -> list[tuple[str, str | None]]:
    """``(literal text, field)`` pairs of a template; a field is written as in the template (``{loss:.3f}``).

    Read by hand rather than with ``string.Formatter``, which takes the ``!`` of ``!=`` and the ``:`` of a slice
    inside a field's expression for a conversion and a format spec."""
    pieces: list[tuple[str, str | None]] = []
    literal: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char in "{}" and template[index + 1 : index + 2] == char:
            literal.append(char)
            index += 2
        elif char == "{":
            end = _field_end(template, index)
            pieces.append(("".join(literal), template[index : end + 1]))
            literal, index = [], end + 1
        elif char == "}":
            raise ValueError(f"single '}}' in the sentence {template!r}: write '}}}}' for a brace")
        else:
            literal.append(char)
            index += 1
    if literal:
        pieces.append(("".join(literal), None))
    return pieces


def _field_end(template: str, start: int) -> int:
    """The index of the ``}`` that closes the field opened at ``start``, past brackets and strings inside its
    expression (its format spec, after a ``:`` outside them, holds no braces)."""
    depth, quote, index = 0, "", start + 1
    while index < len(template):
        char = template[index]
        if depth == 0 and not quote and char == ":":
            end = template.find("}", index)
            if end < 0:
                break
            return end
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                if char == "}":
                    return index
                break
            depth -= 1
        index += 1
    raise ValueError(f"unclosed field in the sentence {template!r}: a field is written {{expression:spec}}")


@cache
def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("".join(re.escape(literal) + ("(.*?)" if field else "") for literal, field in _fields(template)), re.S)


def fill(shown: str, english: str, translated: str) -> str | None:
    """The translation of ``shown``, a sentence a run showed from the template ``english``: ``translated`` with
    each field replaced by the text that field took in ``shown``. ``None`` when ``shown`` is not from
    ``english``. Raises ``ValueError`` when the translation has a field the English lacks."""
    match = _pattern(english).fullmatch(shown)
    return None if match is None else _filled(english, translated, match, lambda value: value)


def _filled(english: str, translated: str, match: re.Match[str], convert: Callable[[str], str]) -> str:
    """``translated`` with each field replaced by ``convert`` of the text that field took in ``match`` (a match
    of the English template ``english``). Raises ``ValueError`` when the translation has a field the English
    lacks."""
    values: dict[str, str] = {}
    for field, value in zip((field for _, field in _fields(english) if field), match.groups()):
        values.setdefault(field, convert(value))
    text = []
    for literal, field in _fields(translated):
        if field is not None and field not in values:
            raise ValueError(f"the translation of {english!r} has the field {field}, which the English does not")
        text.append(literal + (values[field] if field else ""))
    return "".join(text)


def as_literal(template: str) -> str:
    """Python source of an f-string that shows ``template`` (its fields evaluated where it stands)."""
    quote = "'" if any('"' in field for _, field in _fields(template) if field) else '"'
    parts = []
    for literal, field in _fields(template):
        escaped = literal.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")
        parts.append(escaped.replace("{", "{{").replace("}", "}}") + (field or ""))
    return f"f{quote}{''.join(parts)}{quote}"


def _offset(lines: list[str], line: int, column: int) -> int:
    """The character offset in the text of ``lines`` of ``ast``'s (1-based line, UTF-8 byte column)."""
    return sum(len(text) for text in lines[: line - 1]) + len(lines[line - 1].encode("utf-8")[:column].decode("utf-8"))


def translate_code(source: str, translate: Callable[[str], str | None]) -> str:
    """``source`` (a code cell) with each sentence it shows replaced by ``translate(template)``; a sentence
    without a translation, and a cell whose magics move its lines, stay as they are."""
    python = _python(source)
    if python is None or python.rstrip("\n") != source.rstrip("\n"):
        return source
    lines = source.splitlines(keepends=True)
    replaced = []
    for node in _sentence_nodes(source):
        template = _template(node, source)
        translated = translate(template) if template is not None else None
        if translated:
            start, end = _offset(lines, node.lineno, node.col_offset), _offset(lines, node.end_lineno, node.end_col_offset)
            replaced.append((start, end, as_literal(translated)))
    for start, end, literal in reversed(replaced):
        source = source[:start] + literal + source[end:]
    return source


def translate_shown(outputs: list[dict], pairs: list[tuple[str, str]]) -> list[dict]:
    """``outputs`` of a cell that ran, with each Markdown sentence shown from one of the English templates of
    ``pairs`` (``(English, translation)``) replaced by its translation."""
    result = []
    for output in outputs:
        markdown = output.get("data", {}).get("text/markdown")
        if markdown is not None:
            shown = "".join(markdown)
            for english, translated in pairs:
                filled = fill(shown, english, translated)
                if filled is not None:
                    output = {**output, "data": {**output["data"], "text/markdown": filled}}
                    break
        result.append(output)
    return result


def translate_phrase(text: str, table: dict[str, str]) -> str:
    """``text``, a phrase a run glued into the prose (``"diverged at step 12"``), in the language of ``table``
    (English template to translated template, ``{"diverged at step {step}": ...}``).

    The first template whose pattern matches all of ``text`` gives the translation, each field's value translated
    the same way in turn (so ``"batch {size}: {run}"`` can hold a translated run description). A list joined by
    ``", "`` that no template matches is translated item by item; anything else stays as it is. Templates are
    tried in the table's order, so a longer one must come before a shorter one that would also match.
    """
    for english, translated in table.items():
        if not any(literal for literal, _ in _fields(english)):
            continue  # a template without literal text would match everything
        match = _pattern(english).fullmatch(text)
        if match is not None:
            return _filled(english, translated, match, lambda value: translate_phrase(value, table))
    if ", " in text:
        return ", ".join(translate_phrase(item, table) for item in text.split(", "))
    return text
