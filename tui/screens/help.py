"""The help screen: what each figure means and, in short, how the engine computes it (docs/model.md)."""

from __future__ import annotations

from rich.markdown import Markdown
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

HELP = """\
# What the figures mean

Every figure is recomputed on each change, for the current scenario, every comparison row and the scale
chart, in one call of the engine. The full formulas and their sources are in `docs/model.md`.

## Training
- **days**: wall-clock time to train on all the tokens: the steady-state time (tokens / tokens per second,
  tokens per second = global batch x sequence length / step time, from the best parallel plan found)
  stretched by checkpoint stalls, restarts after failures and the work they lose.
- **GPU-h**: GPUs x wall-clock hours, idle time included.
- **MFU**: model FLOPs utilisation = 6 x active parameters (+ attention) x tokens/s / (GPUs x dense peak).
  Efficiency is derived (GEMM size, memory traffic, communication, bubbles), not assumed.
- **idle GPU**: share of GPU-hours a GPU does no useful work: exposed communication (tensor, pipeline, data
  and expert parallel), the pipeline bubble, storage stalls, checkpoint stalls, restarts and lost work.
- **energy**: facility MWh = IT energy x PUE. A GPU draws its TDP while computing and its idle power while
  it waits; hosts and network switches add their measured draw for the whole run.
- **cost**: facility kWh x electricity price, plus GPU-hours x rental price when one is given.
- **CO2e**: facility kWh x grid carbon intensity, in tonnes.
- **tok/s**: training throughput of the whole cluster.

## Serving (p50 / p99)
- **TTFT**: time to first token (prefill, plus queueing at the request rate).
- **TPOT**: time per output token once decoding (memory-bandwidth bound for small batches).
- **tok/s**: output tokens per second across the replicas at the offered request rate; **replicas**: copies
  of the model served. p99 latencies come from a closed-form queueing approximation checked against a
  simulation (docs/model.md, "Serving").

## Where the GPU-hours go
The bar splits GPU-hours into compute and each cause of idleness: comm (exposed communication),
bubble (pipeline fill and drain), storage (data loading stalls), ckpt (checkpoint writes) and failures
(restarts and the work redone after them). The parts add up to the idle-GPU figure.

## Plan and bottleneck
- **Plan**: TP (tensor parallel), PP (pipeline stages), DP (data-parallel replicas), EP (expert parallel),
  mb (micro-batch), ZeRO stage, v (interleaved chunks), recompute. With parallelism left empty the engine
  searches every valid plan and keeps the fastest that fits in GPU memory.
- **Bottleneck**: the largest share of the step (compute, scale-up network, scale-out network, pipeline
  bubble, storage, or memory capacity when nothing fits) and the largest single overhead, in words.
  When the GPU count does not divide the global batch into whole micro-batches, the batch is rounded (by
  at most 10%) and the plan line shows the batch used.

## Compare
Each preset's hardware runs the current workload (`w` runs each preset's own workload instead). Ratios are
against the current scenario: green is better, red is worse. `s` sorts by the column under the cursor,
`p` pins the current scenario as a row, `delete` removes a pinned row.

## Scale
Training days and cost against GPU count on the current hardware, from 8 to 32,768 GPUs in whole nodes;
the current point is marked. Points where no plan fits are marked x.

## Editing
A `*` after a label marks your override of a catalog value; empty means the catalog value (or "auto").
Invalid input is named under its field; the figures keep their last valid values, marked stale.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,f1,q", "app.pop_screen", "Close help", tooltip="Back to the explorer"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            # Rich's Markdown in one Static: the help is read, not navigated, and one widget opens at once.
            yield Static(Markdown(HELP), id="help-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
