"""The explorer's header: Textual's, with a title that repaints without a layout pass.

The sub-title names what changed since the preset was opened, so it changes at nearly every keystroke;
Textual's HeaderTitle asks for a layout pass of the whole screen each time (see sizing.py), although it is
one line of the header's full width whatever it says (longer titles end in an ellipsis).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Header
from textual.widgets._header import HeaderClockSpace, HeaderIcon, HeaderTitle


class _Title(HeaderTitle):
    def update(self, content="", *, layout: bool = False) -> None:
        super().update(content, layout=False)


class TitleHeader(Header):
    """Header(icon=..., show_clock=False) with a title of fixed size."""

    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield _Title()
        yield HeaderClockSpace()
