"""The command palette: Textual's, with a race closed (Textual 8.2.8, still there in its code).

Keys typed just before Escape: the search they start (a worker) runs after the palette has left the screen
and looks for its list (`NoMatches 'CommandList'`), which ended the app. Once the palette is closing no new
search starts, the one running is cancelled, and its last updates find nothing to change.
`WhatIfApp.action_command_palette` opens this palette instead of Textual's. (Page Up / Page Down before the
list is drawn, `KeyError: 0`, is Textual's option list's bug: tui/textual_fixes.py.)
"""

from __future__ import annotations

from textual.await_complete import AwaitComplete
from textual.command import CommandList, CommandPalette
from textual.widgets import LoadingIndicator


class Palette(CommandPalette):
    _leaving = False

    def dismiss(self, result: None = None) -> AwaitComplete:
        if self._leaving:
            return AwaitComplete.nothing()
        self._leaving = True
        self._cancel_gather_commands()
        self._stop_busy_countdown()
        self._stop_no_matches_countdown()
        return super().dismiss(result)

    def _parts_here(self) -> bool:
        return self.is_attached and bool(self.query(CommandList)) and bool(self.query(LoadingIndicator))

    def _gather_commands(self, search_value: str):
        if self._leaving or not self._parts_here():
            return None
        return super()._gather_commands(search_value)

    def _watch__list_visible(self) -> None:
        if self._parts_here():
            super()._watch__list_visible()

    async def _watch__show_busy(self) -> None:
        if self._parts_here():
            await super()._watch__show_busy()
