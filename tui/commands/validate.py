"""`whatif validate`: the model against published runs.

whatif validate                  every case: published, predicted, error, and the auto plan's speed
whatif validate --cross          in-sample and leave-one-source-out errors by regime (generation, scale...)
whatif validate --fit [--write]  the fitted constants' best values; --write stores them and the error bands
"""

from __future__ import annotations

import json
import math
import re
import sys
from importlib.resources import files as package_files

from whatif.engine import ScenarioError, evaluate, load_catalog, resolve

from .. import files
from . import common


def add(sub) -> None:
    v = sub.add_parser(
        "validate",
        help="compare predictions with published runs",
        description="Evaluate every shipped calibration case (published training and serving runs) and print the "
        "prediction, the published figure and the error, the speed of the plan the search finds against the "
        "published plan, then the median and worst absolute error against the targets. Known gaps are listed "
        "but not held to the target. --cross refits the fitted constants leaving each source out in turn.",
    )
    v.add_argument("--json", action="store_true", help="print the comparisons as JSON")
    v.add_argument("--markdown", action="store_true", help="print Markdown tables (docs/model.md)")
    v.add_argument("--case", metavar="TEXT", help="only cases whose file or id contains TEXT")
    v.add_argument("--cross", action="store_true", help="leave-one-source-out cross-validation, by regime")
    v.add_argument("--fit", action="store_true", help="fit the fitted constants (catalog/fitted.toml) on every case")
    v.add_argument("--write", action="store_true", help="with --fit or --cross: store the fit and the error bands")
    v.add_argument(
        "--workload",
        choices=["training", "inference"],
        default="training",
        help="with --cross/--fit: which workload's cases and constants (default: training)",
    )
    v.set_defaults(run=validate)


def _cases(args):
    try:
        cases = files.calibration_cases()
    except ScenarioError as exc:
        for line in exc.lines():
            print(f"whatif: {line}", file=sys.stderr)
        return None
    if args.case:
        cases = [(c, s) for c, s in cases if args.case.lower() in (c.file + c.id).lower()]
    if not cases:
        print("whatif: no calibration case matches", file=sys.stderr)
        return None
    return cases


def validate(args) -> int:
    cases = _cases(args)
    if cases is None:
        return 2
    if args.cross or args.fit:
        return _cross(args, cases)
    if args.write:
        print("whatif: --write goes with --fit or --cross", file=sys.stderr)
        return 2
    return _table(args, cases)


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:+.1f}%" if signed else f"{x:.1f}%"


def _table(args, cases) -> int:
    from whatif.engine.calibration import TARGETS, auto_plans, band_coverage, compare, summarize

    results = evaluate(resolve([s for _, s in cases]))
    comparisons = compare([c for c, _ in cases], results)
    inside, banded, latencies = band_coverage(comparisons)
    checks = {p.case.id: p for p in auto_plans(cases)}
    summaries = [s for s in (summarize(comparisons, w) for w in ("training", "inference")) if s]
    ratios = sorted(p.speed_ratio for p in checks.values() if p.speed_ratio)
    if args.json:
        print(
            json.dumps(
                {
                    "cases": [
                        {
                            "id": c.case.id,
                            "file": c.case.file,
                            "metric": c.case.metric,
                            "published": c.case.value,
                            "predicted": c.predicted,
                            "error_pct": c.error_pct,
                            "known_gap": c.case.known_gap or None,
                            "band": None if c.band is None else [x if x < float("inf") else None for x in c.band],
                            "in_band": c.in_band,
                            "auto_plan_speed_ratio": checks[c.case.id].speed_ratio if c.case.id in checks else None,
                        }
                        for c in comparisons
                    ],
                    "summary": [
                        {
                            "workload": s.workload,
                            "cases": s.n,
                            "median_abs_error_pct": s.median_abs_pct,
                            "worst_abs_error_pct": s.worst_abs_pct,
                            "worst_case": s.worst_id,
                            "meets_target": s.meets_target,
                            "known_gaps": s.gaps,
                        }
                        for s in summaries
                    ],
                    "latency_bands": {"inside": inside, "with_band": banded, "latency_cases": latencies},
                    "auto_plans": {
                        "cases": len(ratios),
                        "median_speed_ratio": _median(ratios),
                        "faster_by_more_than_15pct": sum(r > 1.15 for r in ratios),
                    },
                },
                indent=2,
            )
        )
        return 0

    def ratio(c):
        p = checks.get(c.case.id)
        return "-" if p is None or p.speed_ratio is None else f"x{p.speed_ratio:.2f}"

    if args.markdown:
        print("| case | metric | published | predicted | error | auto plan |")
        print("|---|---|---|---|---|---|")
        for c in comparisons:
            gap = " (known gap)" if c.case.known_gap else ""
            pred = "-" if c.predicted is None else f"{c.predicted:,.4g}"
            print(
                f"| {c.case.id}{gap} | {c.case.metric} | {c.case.value:,.4g} | {pred} | {_pct(c.error_pct)} | "
                f"{ratio(c)} |"
            )
        print()
        for s in summaries:
            print(
                f"{s.workload}: {s.n} cases held to the target; median |error| {s.median_abs_pct:.1f}%, "
                f"worst {s.worst_abs_pct:.1f}% ({s.worst_id})."
            )
        if ratios:
            print(
                f"auto plans: {len(ratios)} cases, median speed x{_median(ratios):.2f} the published plan's; "
                f"{sum(r > 1.15 for r in ratios)} faster by more than 15%."
            )
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("case", "metric", "published", "predicted", "error", "auto plan", "note"):
        table.add_column(col, overflow="fold")
    for c in comparisons:
        note = f"known gap: {c.case.known_gap}" if c.case.known_gap else (c.detail or "")
        table.add_row(
            c.case.id,
            c.case.metric,
            f"{c.case.value:,.4g}",
            "-" if c.predicted is None else f"{c.predicted:,.4g}",
            _pct(c.error_pct),
            ratio(c),
            note,
        )
    console = common.console()
    console.print(table)
    for s in summaries:
        med, worst = TARGETS[s.workload]
        verdict = "meets" if s.meets_target else "MISSES"
        console.print(
            f"{s.workload}: {s.n} cases, median |error| {s.median_abs_pct:.1f}% (target <= {med:.0f}%), "
            f"worst {s.worst_abs_pct:.1f}% on {s.worst_id} (target <= {worst:.0f}%): {verdict} the target"
            + (f"; known gaps not held to it: {', '.join(s.gaps)}" if s.gaps else ""),
            markup=False,
        )
    if banded:
        console.print(_band_line(inside, banded, latencies), markup=False)
    if ratios:
        console.print(
            f"auto plans: on {len(ratios)} cases that publish a plan, the search's plan is x{_median(ratios):.2f} "
            f"the published plan's speed (median; target 0.95-1.10), faster by more than 15% on "
            f"{sum(r > 1.15 for r in ratios)} (docs/model.md, 'Plans the search prefers').",
            markup=False,
        )
    console.print(
        "These errors are in-sample for the fitted constants; `whatif validate --cross` shows the "
        "cross-validated ones.",
        markup=False,
    )
    return 0


def _band_line(inside: int, banded: int, latencies: int) -> str:
    return (
        f"serving latency percentiles: the published figure lies inside the band the capacity error gives "
        f"(the latency at the rate / (1 +/- the serving error band)) on {inside} of {banded} cases with a band "
        f"({latencies - banded} of {latencies} held latency cases have none: a fixed-concurrency client or a "
        f"disaggregated fleet)."
    )


def _median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _cross(args, cases) -> int:
    from whatif.engine.calibration import TARGETS
    from whatif.engine.calibration.bands import bands, bands_toml
    from whatif.engine.calibration.fit import cross_validate

    cat = load_catalog()
    cv = cross_validate(cases, args.workload, cat)
    rows = cv.rows()
    current = {k: cat.fitted[k].value for k in cv.names}
    fitted = dict(zip(cv.names, cv.fitted, strict=True))
    if args.json:
        print(
            json.dumps(
                {
                    "workload": args.workload,
                    "fitted": fitted,
                    "catalog": current,
                    "groups": [
                        {
                            "grouping": g,
                            "group": v,
                            "cases": n,
                            "in_sample_median_pct": im,
                            "in_sample_worst_pct": iw,
                            "cross_median_pct": cm,
                            "cross_worst_pct": cw,
                        }
                        for g, v, n, im, iw, cm, cw in rows
                    ],
                    "cases": [
                        {
                            "id": c.id,
                            "source": s,
                            "in_sample_error_pct": 100 * i,
                            "cross_error_pct": 100 * x,
                            "known_gap": c.known_gap or None,
                        }
                        for c, s, i, x in zip(cv.cases, cv.sources, cv.in_sample, cv.cross, strict=True)
                    ],
                    "fitted_without_source": {
                        src: dict(zip(cv.names, p, strict=True)) for src, p in cv.fitted_without.items()
                    },
                },
                indent=2,
                default=lambda x: None if isinstance(x, float) and not math.isfinite(x) else x,
            )
        )
        return 0
    med_target, worst_target = TARGETS[args.workload]
    if args.markdown:
        print(
            "| regime | cases | in-sample median | in-sample worst | cross-validated median | cross-validated worst |"
        )
        print("|---|---|---|---|---|---|")
        for g, v, n, im, iw, cm, cw in rows:
            label = v if g != "all" else f"all {v} cases"
            print(f"| {label} | {n} | {_pct(im, False)} | {_pct(iw, False)} | {_pct(cm, False)} | {_pct(cw, False)} |")
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("grouping", "regime", "cases", "in-sample median", "worst", "cross-validated median", "worst"):
            table.add_column(col)
        for g, v, n, im, iw, cm, cw in rows:
            table.add_row(g, v, str(n), _pct(im, False), _pct(iw, False), _pct(cm, False), _pct(cw, False))
        console = common.console()
        console.print(table)
        for line in _cross_verdicts(cv, args.workload, med_target, worst_target):
            console.print(line, markup=False)
        if args.workload == "inference":
            from whatif.engine.calibration import BAND_STEMS, band_coverage, compare

            latency = [(c, sc) for c, sc in cases if c.metric in BAND_STEMS]
            results = evaluate(resolve([sc for _, sc in latency]))
            inside, banded, held = band_coverage(compare([c for c, _ in latency], results))
            console.print(_band_line(inside, banded, held), markup=False)
        console.print(
            "fitted constants (all sources): "
            + ", ".join(
                f"{k} = {v:g}" + ("" if v == current[k] else f" (catalog: {current[k]:g})") for k, v in fitted.items()
            ),
            markup=False,
        )
        worst = sorted(
            (
                (abs(x), c.id, x)
                for c, x in zip(cv.cases, cv.cross, strict=True)
                if not c.known_gap and math.isfinite(x)
            ),
            reverse=True,
        )[:10]
        console.print(
            "largest cross-validated errors: " + "; ".join(f"{i} {100 * x:+.1f}%" for _, i, x in worst), markup=False
        )
    if args.write:
        _write_fitted(fitted)
        _write_bands(bands_toml(bands(cv, cat), args.workload), args.workload)
        print(
            f"wrote {len(fitted)} fitted values to catalog/fitted.toml and the {args.workload} error bands to "
            "catalog/error_bands.toml",
            file=sys.stderr,
        )
    return 0


def _cross_verdicts(cv, workload: str, med_target: float, worst_target: float) -> list[str]:
    """One line per target: training as a whole; serving throughput (median and worst) and p99 latency
    (median) on the rows that publish them."""
    import numpy as np
    from whatif.engine.calibration import LATENCY_TARGET as LATENCY_TARGET_PCT

    def verdict(ok):
        return "meets" if ok else "MISSES"

    everything = np.ones(len(cv.cases), dtype=bool)
    if workload == "training":
        n, m, w = cv.summary(cv.cross, everything)
        return [
            f"training, cross-validated (leave one source out), {n} cases: median |error| {m:.1f}% (target <= "
            f"{med_target:.0f}%), worst {w:.1f}% (target <= {worst_target:.0f}%): "
            f"{verdict(m <= med_target and w <= worst_target)} the target."
        ]
    throughput = np.array([g.get("figure") == "throughput" for g in cv.groups])
    p99 = np.array([c.metric in ("ttft_p99_ms", "tpot_p99_ms") for c in cv.cases])
    n, m, w = cv.summary(cv.cross, throughput)
    n99, m99, _ = cv.summary(cv.cross, p99)
    return [
        f"serving throughput, cross-validated, {n} cases: median |error| {m:.1f}% (target <= {med_target:.0f}%), "
        f"worst {w:.1f}% (target <= {worst_target:.0f}%): {verdict(m <= med_target and w <= worst_target)} the target.",
        f"serving p99 TTFT and TPOT, cross-validated, {n99} cases: median |error| {m99:.1f}% (target <= "
        f"{LATENCY_TARGET_PCT:.0f}%): {verdict(m99 <= LATENCY_TARGET_PCT)} the target.",
    ]


def _catalog_path(name: str):
    return package_files("whatif.engine").joinpath("catalog", name)


def _write_fitted(values: dict[str, float]) -> None:
    path = _catalog_path("fitted.toml")
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        # A function, not a replacement string: the value's text is never read as a backslash escape.
        def replace(m: re.Match[str], new: str = repr(float(value))) -> str:
            return m.group(1) + new

        text = re.sub(rf"(?m)(^\[{re.escape(key)}\]\nvalue = )[-0-9.e+]+", replace, text, count=1)
    files.write_text_atomic(path, text)


def _write_bands(section: str, workload: str) -> None:
    path = _catalog_path("error_bands.toml")
    old = path.read_text(encoding="utf-8")
    # Keep the other workload's tables, replace this one's.
    kept = [
        block
        for block in re.split(r"(?m)^(?=\[)", old)
        if block.startswith("[") and not block.startswith(f"[{workload}.")
    ]
    body = section.rstrip() + "\n\n" + "".join(kept).strip()
    files.write_text_atomic(path, body.rstrip() + "\n")
