"""The help screen: what each figure means and, in short, how the engine computes it (docs/model.md)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from .dialogs import Dialog

HELP = """\
# What the figures mean

Every figure is recomputed on each change: the current scenario's own figures at once, then every
comparison row and the scale chart, from the same engine. The full formulas and their sources are in
`docs/model.md`; **Details** (F5) lists every figure `whatif eval --json` gives.

## Keys
- **F2** Edit, **F3** Compare, **F4** Scale, **F5** Details; below 80 columns **F6** shows the figures
  (the Edit / Figures tabs do the same). **alt+1 ... alt+6** jump to the Cluster, Network, Storage,
  Cooling & facility, Training and Serving panes (each pane's title shows its key); in the editor
  **page down / page up** go to the next / previous pane.
- **ctrl+z** undo, **ctrl+y** redo, **ctrl+r** resets the focused field to the opened preset's value;
  "Reset scenario" in the palette resets every field (undoable). **ctrl+a** selects a field's text.
- **F7** Goal: the smallest GPU count (and, over several GPU types, the cheapest type) that trains within
  N days or a budget, or serves a request rate within p99 limits, as `whatif goal`; **a** applies the answer
  (GPU type and count) to the scenario as one undoable edit.
- **ctrl+s** save, **ctrl+o** open (both ask before dropping unsaved edits, as **ctrl+q** quit does),
  **ctrl+p** the command palette (every action, a screenshot, the theme), **F1** this help.

## Typing numbers
Number fields read engineering notation: `15T`, `2k`, `1.5e13`, `15_000`, `1,024`, and a trailing unit
equal to the field's (`80 GB`). What cannot be read (`15x`, `15m`: milli or million?) is an error under
the field, never a different number. A `*` after a label marks your override of a catalog value; an empty
field means the catalog value, "auto" (searched) or "none", as its placeholder says.

## Training
- **time**: wall-clock time to train on all the tokens (days, or hours / minutes when shorter): the
  steady-state time (tokens / tokens per second, tokens per second = global batch x sequence length /
  step time, from the best parallel plan found) stretched by checkpoint stalls, restarts after failures and
  the work they lose. Where the engine gives an error band it follows the figure (`±12%`).
- **GPU-h**: GPUs x wall-clock hours, idle time included.
- **MFU**: model FLOPs utilisation = 6 x active parameters (+ attention) x tokens/s / (GPUs x dense peak).
- **idle GPU**: share of GPU-hours a GPU does no useful work: exposed communication, the pipeline bubble,
  storage stalls, checkpoint stalls, restarts and lost work.
- **energy**: facility MWh = IT energy x PUE. **CO2e**: facility kWh x grid carbon intensity, in tonnes.
- **cost**: what the line under the figures says it includes: today facility kWh x electricity price,
  plus GPU-hours x rental price when one is given.
- **Runner-up**: the second-best plan, how much slower it is and why, where the engine gives one.

## Serving
- **TTFT** (time to first token) and **TPOT** (time per output token), p50/p99 in ms. With a p99 limit
  in the Serving pane, ✓ means the p99 is within it, ✗ that it is over; **in limits** is the throughput
  at the highest request rate that meets every limit.
- **tok/s**: output tokens per second across the replicas at the offered request rate; **replicas**:
  copies of the model served on the serving GPUs (empty "serving GPUs": every GPU of the cluster).

## Stale figures
When a field has a problem, the figures it affects keep their last valid values, in italics, and their
title says "stale" and why: a serving-only problem (an FP8 serving precision on a GPU without FP8) marks
only the serving figures stale; a cluster problem marks both. The status line names the pane and field.

## Compare
Each preset's hardware runs the current workload (`w`: each preset's own). Every row shows its training
plan under its name and its fabrics (scale-up / scale-out) under its hardware; under each figure its ratio
to the baseline ◆, with ✓ better, ✗ worse and = within 1%. `b` makes the row under the cursor the
baseline (it stays on top), `h` hides a row and `H` shows them all, `s` sorts by the column under the
cursor, `p` pins the current scenario (named by what differs from the opened preset), `delete` removes a
pin. The columns that fit the width are shown; the palette shows or hides any column. `m` and `c` copy
the comparison as Markdown or CSV (OSC 52) and save it in the exports folder (the notification names it).

## Scale
Training days (log axis) and cost (from $0) against GPU count on a log axis: a point at every whole-node
count of a grid with three points per doubling, from 8 to 32,768 GPUs. ◆ is the current point, x a count
where no plan fits; a target (days) and a budget (USD) typed above the charts are drawn as lines.
"""


class HelpScreen(Dialog[None]):
    BINDINGS = [
        Binding("escape,f1,q", "close", "Close help", tooltip="Back to the explorer"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            # Rich's Markdown in one Static: the help is read, not navigated, and one widget opens at once.
            from rich.markdown import Markdown  # here, not at start-up: it takes a tenth of the import time

            yield Static(Markdown(HELP), id="help-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
