"""The command's terminal output: its two consoles, and the pieces every printed line and table is
made of.

Titles, author names, paths, URLs and upstream error bodies come from outside. Rich reads
`[/ITAL]` in a title as a closing tag (and raises MarkupError), `:abc:` as an emoji code and
numbers or URLs as things to colour. So these consoles never interpret a string: markup, emoji and
highlighting are off, and a `str` prints exactly as it is, in a line, a table cell or a progress
bar. Control characters from outside (ESC sequences that would recolour, move the cursor or
retitle the terminal) are shown as visible `\\xNN` escapes. Our own colours ("error:" in red)
are `Text` objects built here, never markup strings, so nothing outside can be read as a style."""

from __future__ import annotations

import re
from typing import Iterable

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character but tab and newline written as `\\xNN`."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class _PlainConsole(Console):
    """Every `str` it renders (a printed line, a table cell given as str) passes through `visible`."""

    def render_str(self, text: str, **options) -> Text:
        return super().render_str(visible(text), **options)


def plain_console(*, stderr: bool = False) -> Console:
    """A console that prints every string as text (no markup, emoji or highlighting)."""
    return _PlainConsole(stderr=stderr, soft_wrap=True, markup=False, emoji=False, highlight=False)


def as_text(value: object) -> Text:
    """A `Text` that shows `value` literally, whatever brackets, colons or control characters it holds."""
    return value if isinstance(value, Text) else Text(visible("" if value is None else str(value)))


def error_line(message: object) -> Text:
    """`error: MESSAGE`, the label in bold red, the message as text."""
    return Text.assemble(("error:", "bold red"), " ", as_text(message))


def warning_line(message: object) -> Text:
    """`warning: MESSAGE`, the label in yellow, the message as text."""
    return Text.assemble(("warning:", "yellow"), " ", as_text(message))


def bold_line(message: object) -> Text:
    return Text(str(message), style="bold")


def text_table(title: object, columns: Iterable[str | tuple[str, dict]], **options) -> Table:
    """A table whose title and cells are shown literally: add rows with `add_text_row`. A column is
    a header, or (header, keyword arguments of Table.add_column)."""
    table = Table(title=as_text(title), **options)
    for column in columns:
        header, kwargs = (column, {}) if isinstance(column, str) else column
        table.add_column(as_text(header), **kwargs)
    return table


def add_text_row(table: Table, *cells: RenderableType | object) -> None:
    """A row of cells shown literally (a plain `str` cell would be parsed as markup by Rich)."""
    table.add_row(*(as_text(cell) for cell in cells))


def progress_bar(console: Console) -> Progress:
    """The progress bar of long commands; its description (a path, a URL, a source name) is text."""
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}", markup=False),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
