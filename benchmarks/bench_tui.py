"""Keystroke-to-figure latency of the explorer, measured in a real pseudo-terminal.

    python benchmarks/bench_tui.py [--rounds 3] [--size 80x24]

It starts the app in a pty with 20 comparison presets (the shipped ones plus generated ones in a temporary
WHATIF_HOME), waits for the first full screen, then times two kinds of edit, from writing the LAST key to
the moment the new training-time figure's bytes arrive on the terminal:

- hardware: for each of a list of GPU counts, types the count into the GPU count field (the cursor starts
  there). The counts each have a plan that fits and are not points of the scale sweep, so every timed
  keystroke makes the engine compute the current row (comparisons and sweep come from the cache);
- workload: jumps to the Training pane (alt+5, tab, tab), and for each of a list of token counts selects
  the field (ctrl+a) and types it in engineering notation ("16T"). A workload edit changes every
  comparison row and the whole scale sweep: the current figures are painted first, the rest follow from
  the worker thread (the time to the figures is what is timed; the worker still runs meanwhile).

Two variants run alternately in the same run: the real app, and the same app with `evaluate` replaced by
a no-op that returns a prepared result frame (its training days scaled by GPU count and tokens, so that a
new figure still arrives). It prints p50/p95 per kind of edit for both, their ratio, and the start-up time
to the first full screen. Targets (issue 13): p95 <= 100 ms and <= 1.2x the no-op variant for every edit;
start-up <= 1.0 s. It asserts nothing.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

COMPARISONS = 20
VERBOSE = False
# GPU counts with a plan for a global batch of 1,920 sequences (2^7 x 15) that are not powers of two
# (the scale sweep's points) and not a prefix of one another (typing 15360 would compute 1536 on the way).
COUNTS = (384, 640, 960, 1280, 1536, 1920, 2560, 3072, 5120, 6144, 10240, 12288, 480, 768)
GLOBAL_BATCH = 1920
SETTLE_S = 3.0
# Training tokens typed in the workload phase (each a different training time; none a prefix of another
# once the T is typed).
TOKENS = ("16T", "17T", "18T", "19T", "21T", "22T", "23T", "24T", "26T", "27T", "28T", "29T")
ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")


# ---------------------------------------------------------------------------------------------------
# the child: the app itself, real or with a no-op engine
# ---------------------------------------------------------------------------------------------------


def child(variant: str, scenario_path: str) -> int:
    from whatif.tui import files
    from whatif.tui.app import make_app

    scenario = files.load_scenario(scenario_path)
    options = {}
    if variant == "noop":
        options["evaluate_fn"] = _noop_evaluate(scenario)
    app = make_app(scenario, scenario_path, freeze_gc=True, **options)  # as `whatif` runs it
    app.run()
    return 0


def _noop_evaluate(scenario):
    """A stand-in for `evaluate` that does no modelling: a prepared result row, repeated, with the GPU count
    copied from the input and the training days scaled by it (so the screen still gets a new figure)."""
    import polars as pl
    from whatif.engine import evaluate, resolve

    template = evaluate(resolve([scenario]))
    days, n0 = template["train_wall_clock_days"][0], template["n_gpus"][0]
    tokens0 = scenario.training.train_tokens
    block = pl.concat([template] * 64)

    def noop(frame: pl.DataFrame) -> pl.DataFrame:
        out = block.head(frame.height) if frame.height <= 64 else pl.concat([template] * frame.height)
        scale = frame["tokens"].cast(pl.Float64) / tokens0 / frame["n_gpus"].cast(pl.Float64)
        return out.with_columns(
            scenario=frame["scenario"],
            name=frame["name"],
            n_gpus=frame["n_gpus"].cast(out.schema["n_gpus"]),
            train_wall_clock_days=days * n0 * scale,
        )

    return noop


# ---------------------------------------------------------------------------------------------------
# the parent: presets, expected figures, the pty driver
# ---------------------------------------------------------------------------------------------------


def prepare(home: Path):
    """The benchmark scenario file, 20 comparison presets, and the figure expected after each edit."""
    from whatif.engine import evaluate, resolve
    from whatif.tui import files, numbers
    from whatif.tui.widgets.figures import duration

    default = files.load_scenario(files.shipped_presets()["default"])
    scenario = default.edited("training", global_batch_seqs=GLOBAL_BATCH).edited(None, name="bench")
    path = home / "bench.toml"
    files.save_scenario(scenario, path)

    shipped = {k: files.load_scenario(v) for k, v in files.shipped_presets().items()}
    user_dir = home / "presets"
    made = 0
    factors = (2, 4, 0.5, 8)
    while len(shipped) + made < COMPARISONS:
        base = list(shipped.values())[made % len(shipped)]
        f = factors[(made // len(shipped)) % len(factors)]
        count = max(base.cluster.gpus_per_node, int(base.cluster.gpu_count * f))
        count -= count % base.cluster.gpus_per_node
        variant = base.edited("cluster", gpu_count=count).edited(None, name=f"{base.name} x{f:g}")
        files.save_scenario(variant, user_dir / f"variant-{made:02d}.toml", overwrite=True)
        made += 1

    rows = evaluate(resolve([scenario.edited("cluster", gpu_count=n) for n in COUNTS]))
    real = {}
    for n, days in zip(COUNTS, rows["train_wall_clock_days"].to_list(), strict=True):
        if days is not None:
            real[("gpus", str(n))] = duration(days)
    last = scenario.edited("cluster", gpu_count=COUNTS[-1])
    token_rows = evaluate(resolve([last.edited("training", train_tokens=numbers.parse(t)) for t in TOKENS]))
    for text, days in zip(TOKENS, token_rows["train_wall_clock_days"].to_list(), strict=True):
        real[("tokens", text)] = duration(days)
    base_row = evaluate(resolve([scenario])).row(0, named=True)
    days0, n0, t0 = base_row["train_wall_clock_days"], scenario.cluster.gpu_count, scenario.training.train_tokens
    noop = {}
    for kind, text in real:
        n, tokens = (int(text), t0) if kind == "gpus" else (COUNTS[-1], numbers.parse(text))
        noop[(kind, text)] = duration(days0 * n0 / n * tokens / t0)
    start_text = duration(days0)
    return scenario, path, real, noop, start_text


class Terminal:
    """A child process on a pseudo-terminal of a given size, with its output read as it arrives."""

    def __init__(self, argv: list[str], env: dict, cols: int, rows: int) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self.fd = master
        self.tail = b""

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.fd, 65536)
        except OSError:
            return b""

    def wait_for(self, text: str, timeout: float = 10.0) -> float | None:
        """Seconds until `text` appears in the output (escape sequences removed), or None."""
        start = time.perf_counter()
        needle = text.encode()
        while time.perf_counter() - start < timeout:
            chunk = self.read(0.05)
            if chunk:
                self.tail = (self.tail + chunk)[-65536:]
                if needle in ANSI.sub(b"", self.tail):
                    self.tail = b""
                    return time.perf_counter()
        return None

    def quiet(self, gap: float = 0.25, limit: float = 3.0) -> None:
        """Read until nothing has arrived for `gap` seconds."""
        start = time.perf_counter()
        while time.perf_counter() - start < limit:
            if not self.read(gap):
                break
        self.tail = b""

    def send(self, data: bytes) -> float:
        os.write(self.fd, data)
        return time.perf_counter()

    def close(self) -> None:
        try:
            self.send(b"\x11")  # ctrl+q
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
        os.close(self.fd)


def run_round(
    variant: str, path: Path, expected: dict, start_text: str, env: dict, cols: int, rows: int
) -> tuple[float | None, dict[str, list[float]], list]:
    argv = [sys.executable, __file__, "--child", variant, str(path)]
    term = Terminal(argv, env, cols, rows)
    latencies: dict[str, list[float]] = {"gpus": [], "tokens": []}
    missed = []

    def keys(data: bytes) -> None:
        for byte in data:  # one key at a time, as typed (a burst may be parsed out of order)
            term.send(bytes([byte]))
            term.quiet(gap=0.03, limit=0.5)
        term.quiet()

    try:
        seen = term.wait_for(start_text, timeout=20)
        startup = None if seen is None else seen - term.started
        # The comparisons and the sweep follow the first screen from the worker thread; they paint
        # nothing visible on the Explore tab, so give them time to finish before timing keystrokes.
        time.sleep(SETTLE_S)
        term.quiet()
        shown = "1024"
        in_tokens = False
        for (kind, target), figure in expected.items():
            if kind == "gpus":
                common = os.path.commonprefix([shown, target])
                prefix = b"\x7f" * (len(shown) - len(common)) + target[len(common) : -1].encode()
                shown = target
            else:
                if not in_tokens:  # alt+5: the Training pane's switch; tab, tab: the tokens field
                    term.send(b"\x1b5")  # in one write: a lone ESC would be read as the escape key
                    term.quiet()
                    keys(b"\t\t")
                    in_tokens = True
                prefix = b"\x01" + target[:-1].encode()  # ctrl+a selects the field's text
            if prefix:
                keys(prefix)
            sent = term.send(target[-1].encode())
            arrived = term.wait_for(figure, timeout=5)
            if arrived is None:
                missed.append(target)
            else:
                latencies[kind].append(arrived - sent)
                if VERBOSE:
                    print(f"    {variant} {kind:6s} {target:>6s} {1e3 * (arrived - sent):7.1f} ms")
            term.quiet()
    finally:
        term.close()
    return startup, latencies, missed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="app runs per variant (alternating)")
    parser.add_argument("--size", default="80x24", help="terminal size, COLSxROWS")
    parser.add_argument("--verbose", action="store_true", help="print every keystroke's latency")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    global VERBOSE
    VERBOSE = args.verbose
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    home = Path(tempfile.mkdtemp(prefix="whatif-bench-"))
    os.environ["WHATIF_HOME"] = str(home)
    try:
        scenario, path, real, noop, start_text = prepare(home)
        from whatif.tui.session import discover_presets

        n_presets = len(discover_presets())
        print(
            f"scenario: {scenario.cluster.gpu} x{scenario.cluster.gpu_count}, global batch {GLOBAL_BATCH}; "
            f"{n_presets} comparison presets; {len(real)} GPU counts per round; terminal {cols}x{rows}"
        )
        env = dict(
            os.environ, TERM="xterm-256color", COLORTERM="truecolor", WHATIF_HOME=str(home), TEXTUAL_ANIMATIONS="none"
        )
        env.pop("TEXTUAL", None)
        results = {(v, k): [] for v in ("real", "noop") for k in ("gpus", "tokens")}
        startups, missed = [], {"real": [], "noop": []}
        for r in range(args.rounds):
            for variant, expected in (("real", real), ("noop", noop)):
                # Both variants open on the same figure: the no-op scales days by n_gpus / n_gpus = 1.
                startup, lat, miss = run_round(variant, path, expected, start_text, env, cols, rows)
                for kind, values in lat.items():
                    results[(variant, kind)] += values
                missed[variant] += miss
                if variant == "real" and startup is not None:
                    startups.append(startup)
                print(
                    f"  round {r + 1} {variant:4s}: {sum(len(v) for v in lat.values())} edits"
                    + (f", start-up {startup:.2f} s" if startup is not None and variant == "real" else "")
                    + (f", no figure for {miss}" if miss else "")
                )
        print()
        print(f"{'variant':8s} {'edit':8s} {'n':>4s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
        for (variant, kind), values in results.items():
            if values:
                print(
                    f"{variant:8s} {kind:8s} {len(values):4d} {pct(values, 0.5) * 1e3:8.1f} "
                    f"{pct(values, 0.95) * 1e3:8.1f} {max(values) * 1e3:8.1f}"
                )
        for kind, what in (("gpus", "hardware (GPU count)"), ("tokens", "workload (training tokens)")):
            real_v, noop_v = results[("real", kind)], results[("noop", kind)]
            if real_v and noop_v:
                ratio = pct(real_v, 0.95) / pct(noop_v, 0.95)
                print(
                    f"{what}: p95 real {pct(real_v, 0.95) * 1e3:.1f} ms (target <= 100 ms), "
                    f"{ratio:.2f}x the no-op (target <= 1.2x)"
                )
        if startups:
            print(
                f"start-up to first full screen: median {statistics.median(startups):.2f} s, "
                f"max {max(startups):.2f} s (target <= 1.0 s)"
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
