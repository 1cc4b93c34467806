"""`whatif catalog` and `whatif presets`: what the catalog holds, and which preset names a command accepts."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

from whatif.engine import ScenarioError, load_catalog

from .. import files
from . import common


def add(sub) -> None:
    k = sub.add_parser(
        "catalog",
        help="list catalog entries (GPUs, fabrics, storage, cooling, sites, hosts, host CPUs, prices...)",
        description="List the catalog: keys to use in scenario files, key figures and sources.",
    )
    k.add_argument(
        "kind",
        nargs="?",
        choices=[
            "gpus",
            "fabrics",
            "nvme",
            "shared-fs",
            "cooling",
            "sites",
            "hosts",
            "host-cpus",
            "prices",
            "failure-profiles",
            "models",
            "workloads",
        ],
        help="one section (default: all keys, briefly)",
    )
    k.add_argument("--sources", action="store_true", help="show each entry's source and notes")
    k.set_defaults(run=catalog)

    p = sub.add_parser(
        "presets",
        help="list the preset names every command accepts",
        description="List the presets shipped with whatif, the shipped workloads (for --workload) and those "
        "saved in your presets folder. Any command that takes a scenario file takes these names too.",
    )
    p.set_defaults(run=presets)


def catalog(args) -> int:
    from rich.table import Table

    cat = load_catalog()
    kinds = cat.kinds()
    console = common.console()
    if args.kind is None:
        for kind, entries in kinds.items():
            console.print(f"[bold]{kind}[/bold]: {common.markup(', '.join(entries), None)}")
        console.print(f"[bold]failure-profiles[/bold]: {common.markup(', '.join(cat.failure_profiles), None)}")
        console.print("[bold]prices[/bold]: dated rental and purchase prices per GPU (`whatif catalog prices`)")
        console.print("`whatif catalog KIND` shows figures; add --sources for sources.")
        return 0
    if args.kind in ("prices", "failure-profiles"):
        return _prices(cat, console, args.sources) if args.kind == "prices" else _profiles(cat, console, args.sources)
    columns = {
        "gpus": ("bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_tb_s", "tdp_w", "scale_up"),
        "fabrics": ("kind", "gb_s_per_direction", "busbw_efficiency", "latency_us"),
        "nvme": ("pcie_gen", "read_gb_s", "write_gb_s"),
        "shared-fs": ("read_gb_s", "write_gb_s"),
        "cooling": ("server_fan_share", "pue_factor", "water_factor", "rack_limit_kw", "sustained_clock_factor"),
        "sites": ("pue", "wue_l_per_kwh"),
        "hosts": ("host_cpu", "cpus_per_gpu", "storage_nics"),
        "host-cpus": ("cores", "base_ghz", "matrix_unit", "bf16_tflops", "int8_tops", "mem_gb_s", "tdp_w"),
        "models": ("params_total_b", "params_active_b", "layers", "hidden", "heads", "kv_heads"),
        "workloads": ("sample_bytes", "batch_samples", "compute_s_per_batch", "au_threshold"),
    }[args.kind]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("key", "name", *columns, *(("source",) if args.sources else ())):
        table.add_column(col, overflow="fold")
    # Catalog text is shipped data, but its sources hold brackets: shown literally, never as markup.
    for key, entry in kinds[args.kind].items():
        cells = [key, entry.name] + [_cell(getattr(entry, c)) for c in columns]
        if args.sources:
            cells.append(entry.source + (f" NOTE: {entry.notes}" if getattr(entry, "notes", "") else ""))
        table.add_row(*(common.cell(c, None) for c in cells))
    console.print(table)
    return 0


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _prices(cat, console, sources: bool) -> int:
    """Every GPU type's rental and purchase prices, its default first (facility.rental_price takes a key)."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("gpu", "key", "price", "term", "date", "provider / what", *(("source",) if sources else ())):
        table.add_column(col, overflow="fold")
    for gpu in cat.prices:  # CPU sockets have no catalog prices
        prices, via = cat.gpu_prices(gpu)
        mark = lambda key, default: key + (" (default)" if key == default else "")  # noqa: E731
        for key, p in prices.rental.items():
            who = p.provider + ("" if via == gpu else f" (priced as {via})")
            cells = [gpu, mark(key, prices.default_rental), f"${p.usd_per_gpu_hour:g}/GPU-h", p.term, p.date, who]
            table.add_row(*cells, *((p.source,) if sources else ()))
        for key, p in prices.purchase.items():
            cells = [gpu, mark(key, prices.default_purchase), f"${p.usd_per_gpu:,.0f}/GPU", "purchase", p.date, p.what]
            table.add_row(*cells, *((p.source,) if sources else ()))
    console.print(table)
    return 0


def _profiles(cat, console, sources: bool) -> int:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("key", "name", "gpu_mtbf_hours", "node_mtbf_hours", *(("basis",) if sources else ())):
        table.add_column(col, overflow="fold")
    for key, p in cat.failure_profiles.items():
        cells = [key, p.name, f"{p.gpu_mtbf_hours:g}", f"{p.node_mtbf_hours:g}"]
        table.add_row(*cells, *((p.basis,) if sources else ()))
    console.print(table)
    return 0


def presets(args) -> int:
    """Names any scenario argument accepts, with each preset's title and what it holds."""
    groups: list[tuple[str, Mapping[str, Traversable | Path]]] = [
        ("shipped", files.shipped_presets()),
        ("workloads (for --workload)", files.shipped_workloads()),
        (f"saved in {files.user_presets_dir()}", files.user_presets()),
    ]
    folder = files.user_presets_dir()
    for title, entries in groups:
        empty = " (none)"
        if entries is groups[-1][1] and (folder.exists() or folder.is_symlink()) and not folder.is_dir():
            # Saving there would fail: say why now, not "(none)".
            empty = " (none: it is a file, not a folder; move it away or set WHATIF_HOME to another place)"
        print(f"{common.plain(title, None)}:" + ("" if entries else empty))
        for name, path in entries.items():
            try:
                scenario, data = _load(path)
                line = f"{common.plain(scenario.name)}  [{_holds(data)}]"
            except ScenarioError as exc:
                line = f"(invalid: {exc.issues[0]})"
            print(f"  {common.plain(name):32s} {line}")
    return 0


def _load(path):
    from whatif.engine.text import loads

    text = files._read_text(path)
    scenario, _ = files.parse_scenario(text, str(path))
    return scenario, loads(text)


def _holds(data: dict) -> str:
    """'hardware, training, serving' from the sections a preset file holds."""
    from whatif.engine.presets_merge import HARDWARE_SECTIONS

    parts = []
    if any(k in data for k in HARDWARE_SECTIONS):
        parts.append("hardware")
    parts += [label for key, label in (("training", "training"), ("inference", "serving")) if key in data]
    return ", ".join(parts) or "defaults only"
