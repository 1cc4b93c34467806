"""A fix for a bug in Textual 8.2.8 (pinned in pyproject.toml), applied when the explorer is imported.

`OptionList` pages (Page Up / Page Down) by its drawn lines, and until the list has been laid out it has
none: `_move_page` then looks up the highlighted option's line and raises `KeyError` (`KeyError: 0` in
the command palette, `KeyError: 3` in a Select's drop-down opened and paged in one burst of keys). Every
option list of the app has it: the command palette, the Open dialog and each Select's overlay, two of
which Textual builds itself, so the fix is on the class. Until the list is drawn the keys go to the first
/ last option, which is where a page takes them in a list that fits.

Re-check when Textual is upgraded: tests/test_hardening_tui.py pages lists before they are drawn. The
other places that lean on Textual 8.2.8's internals, each re-checked on an upgrade by the tests named:

* tui/app.py, WhatIfApp._handle_exception and on_event: work and input still queued while the app closes
  (tests/test_hardening_tui.py leaves key streams at random moments);
* tui/widgets/editor.py, FieldInput._watch_value overrides Input's private watcher, which asked for a layout
  pass of the whole screen at every keystroke (tests/test_tui_repaint.py: valid digits lay nothing out);
* tui/widgets/header.py imports HeaderTitle, HeaderIcon and HeaderClockSpace from the private
  textual.widgets._header, to keep the title's repaint from asking for a layout (the same repaint tests).
"""

from __future__ import annotations

from textual.widgets import OptionList

_ORIGINAL_MOVE_PAGE = OptionList._move_page


def _move_page(self: OptionList, direction) -> None:
    if not self.scrollable_content_region:  # not laid out yet: no lines to page by
        if direction < 0:
            self.action_first()
        else:
            self.action_last()
        return
    _ORIGINAL_MOVE_PAGE(self, direction)


def apply() -> None:
    if OptionList._move_page is not _move_page:
        OptionList._move_page = _move_page  # type: ignore[method-assign]
