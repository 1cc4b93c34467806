"""Repainting a widget without a layout pass of the whole screen when its new content keeps its size.

In Textual 8 a widget that asks for layout (`Static.update`'s default, a reactive declared with
layout=True) makes the screen re-arrange every widget it holds: at 80x24 the explorer's ~380 widgets take
15-25 ms, plus a repaint of everything that moved, for every keystroke. Most edits change a figure's text
but not its height (the same number of wrapped lines in the same width), and then a repaint is enough.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Static


def keeps_size(widget: Widget) -> bool:
    """Whether `widget`'s current content fits the region it was given: its width is not sized by its content
    and its content height at that width is the height it has. False before the first layout."""
    if not widget.is_mounted or not widget.size:
        return False
    styles = widget.styles
    if styles.width is not None and styles.width.is_auto:
        return False  # (no width of its own: the container's, or a grid cell's)
    width, height = widget.content_size
    if styles.height is not None and not styles.height.is_auto:
        return True  # a set height (grid cells: their row's)
    needed = widget.get_content_height(widget.container_size, widget.app.size, width)
    return needed == height


def refresh_content(widget: Widget) -> None:
    """Repaint `widget` after its content changed; a layout pass only when its size must change."""
    widget.refresh()  # also drops the cached content height
    if not keeps_size(widget):
        widget.refresh(layout=True)


def update_static(widget: Static, content) -> None:
    """`widget.update(content)`, with a layout pass only when the new content needs another size."""
    widget.update(content, layout=False)
    if not keeps_size(widget):
        widget.refresh(layout=True)


def refresh_growing(widget: Widget) -> None:
    """Repaint `widget` after its content changed, letting its height grow but never shrink (a `min-height`
    that follows the tallest content at this width). Text under the figures whose wrapped height varies
    from edit to edit then leaves blank lines below it when it gets shorter, instead of moving what follows,
    and most keystrokes repaint it without a layout pass. `forget_growth` undoes it (a new width)."""
    widget.refresh()
    if not widget.is_mounted or not widget.size:
        widget.refresh(layout=True)
        return
    width, height = widget.content_size
    needed = widget.get_content_height(widget.container_size, widget.app.size, width)
    if needed > height:
        widget.styles.min_height = needed  # the one layout pass, only upward


def forget_growth(widget: Widget) -> None:
    """Let a widget kept by `refresh_growing` take its content's height again."""
    if widget.styles.min_height is not None:
        widget.styles.min_height = None
