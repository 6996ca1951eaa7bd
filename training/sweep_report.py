"""How search.py shows a sweep: the tables of configurations and of runs, the CSV of the runs, and the SVG that plots
the metric against each swept hyper-parameter (one panel per flag that varies, a point per seed run, a dash at each
configuration's mean). Rows are search.py's (load_runs), configurations run_records.configurations'. Standard library
only: the SVG is written by hand, small and readable, and opens in any browser; hovering a point names its run. A
numeric axis is log-scaled when its values are all positive and span more than 10x (learning rates); values that are
not all numbers (booleans, names, a flag some runs did not record) are evenly spaced categories.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from training.flags import COLUMNS
from training.run_records import HPARAMS, NAMED, flag_value, score

SHORT = {
    name: header for name, header in COLUMNS.items() if header != name
}  # table headers (the CSV: flag names)


def fmt(value) -> str:
    """Short text for the table: '?' for unknown, at most 4 significant digits for floats (100.0 -> '100')."""
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _marks(row: dict) -> str:
    """'*' no readable args.json, '!' stopped by a non-finite loss (explained under the table)."""
    return ("*" if not row["args_json"] else "") + ("!" if row["stopped"] else "")


def mean_std(values: list) -> str:
    """'mean ± std' (sample std; '-' for one value), '?' when a value is missing."""
    if not values or any(v is None for v in values):
        return "?"
    std = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "-"
    return f"{statistics.mean(values):.4f} ± {std}"


def run_columns(metric: str, companions: dict[str, str], extra: list[str]) -> list[tuple[str, str, object]]:
    """[(table header, CSV header, row -> value)] of the runs table: the metric, the companion scores
    (run_records.companion_columns), the HPARAMS, every other flag that varies (`extra`), method, backbone, the
    configuration's rank (config) and the run."""
    return [
        (metric, metric, lambda r: r["metric"]),
        *((h, k, lambda r, k=k: score(r, k)) for h, k in companions.items()),
        ("best_epoch", "best_epoch", lambda r: r["best_epoch"]),
        *((SHORT.get(n, n), n, lambda r, n=n: r[n]) for n in HPARAMS),
        *((n, n, lambda r, n=n: flag_value(r, n)) for n in extra),
        *((n, n, lambda r, n=n: r[n]) for n in NAMED),
        ("config", "config", lambda r: r["config_no"]),
        ("run", "run", lambda r: r["run"]),
    ]


def format_table(header: list[str], cells: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [header, *cells]
    )


def runs_table(ranked: list[dict], columns: list) -> str:
    """One line per run; the run marked `*` (no readable args.json) or `!` (stopped); config '-': none."""
    cells = [[fmt(get(r)) for _, _, get in columns] for r in ranked]
    for line, row in zip(cells, ranked, strict=True):
        line[-1] += _marks(row)
        line[-2] = "-" if row["config_no"] is None else line[-2]
    return format_table([h for h, _, _ in columns], cells)


def configs_table(configs: list[dict], companions: dict[str, str], extra: list[str]) -> str:
    """One line per configuration, in rank order: #, mean ± std (sample std, '-' for one seed), n, the companion
    scores' mean ± std over the same seeds, the HPARAMS but the seed, the other varying flags, method, backbone,
    and its seeds (a stopped one marked '!', left out)."""
    names = [n for n in HPARAMS if n != "seed"]
    header = ["#", "mean ± std", "n", *companions, *(SHORT.get(n, n) for n in names), *extra, *NAMED, "seeds"]
    cells = []
    for i, c in enumerate(configs, 1):
        first = c["best"]
        seeds = [fmt(r["seed"]) for r in c["runs"]] + [fmt(r["seed"]) + "!" for r in c["stopped"]]
        cells.append(
            [
                str(i),
                mean_std([r["metric"] for r in c["runs"]]),
                str(c["n"]),
                *(mean_std([score(r, k) for r in c["runs"]]) for k in companions.values()),
                *(fmt(first[n]) for n in names),
                *(fmt(flag_value(first, n)) for n in extra),
                *(fmt(first[n]) for n in NAMED),
                " ".join(seeds),
            ]
        )
    return format_table(header, cells)


def write_csv(path: str, rows: list[dict], columns: list) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([name for _, name, _ in columns] + ["args_json", "stopped", "path"])
        for row in rows:
            values = [get(row) for _, _, get in columns]
            writer.writerow(
                ["" if v is None else v for v in values]
                + [row["args_json"], row["stopped"] or "", row["path"]]
            )


def write_plot(path: str, title: str, y_label: str, configs: list[dict], flags: list[str]) -> None:
    """The SVG of the metric against each swept flag: a point per seed run, a dash per configuration's mean."""
    runs = [(r["flags"], r["metric"], r["run"]) for c in configs for r in c["runs"]]
    means = [
        (c["best"]["flags"], c["mean"], f"configuration #{i} (n={c['n']})") for i, c in enumerate(configs, 1)
    ]
    with open(path, "w") as f:
        f.write(sweep_svg(title, y_label, flags, runs, means))


# The SVG
NOT_RECORDED = object()  # a flag the run's args.json does not have: the category "?"
WIDTH, HEIGHT, PER_ROW = 300, 230, 3  # one panel
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 46  # the plot area's margins inside a panel
HEADER = 50  # the figure's title and legend


def _label(value) -> str:
    if value is NOT_RECORDED:
        return "?"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _is_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (a hand-edited args.json): a category
        return False


def x_axis(values: list) -> tuple[Callable, list[tuple[float, str]], str]:
    """(value -> position in [0, 1], ticks [(position, label)], scale name) for one flag's values."""
    distinct = list({_label(v): v for v in values}.values())
    if all(_is_number(v) for v in distinct) and len(distinct) > 1:
        low, high = min(distinct), max(distinct)
        log = low > 0 and high / low > 10
        f = math.log10 if log else float
        span = f(high) - f(low)

        def position(v):
            return 0.05 + 0.9 * (f(v) - f(low)) / span

        shown = sorted(distinct) if len(distinct) <= 6 else [low, high]
        return position, [(position(v), _label(v)) for v in shown], "log" if log else "linear"
    names = sorted({_label(v) for v in distinct})
    places = {name: (i + 0.5) / len(names) for i, name in enumerate(names)}
    return (lambda v: places[_label(v)]), [(p, n) for n, p in places.items()], "categories"


def y_ticks(low: float, high: float) -> list[float]:
    """About five round values in [low, high]: multiples of 1, 2, 2.5 or 5 times a power of ten."""
    raw = (high - low) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def _text(x, y, text, size=11, anchor="middle", extra="") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def panel(flag: str, y_label: str, runs: list, means: list, y_range: tuple[float, float]) -> list[str]:
    """SVG lines of one panel at (0, 0): `runs` [(flag value, metric, run name)], `means` [(flag value, mean,
    configuration name)]."""
    position, ticks, scale = x_axis([v for v, _, _ in runs + means])
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    low, high = y_range

    def y_pos(y):
        return TOP + h * (1 - (y - low) / (high - low))

    def xy(value, y):
        return LEFT + w * position(value), y_pos(y)

    title = f"{flag}" + (" (log scale)" if scale == "log" else "")
    out = [
        f'<g class="panel" data-flag={quoteattr(flag)}>',
        _text(WIDTH / 2, 16, title, 12, extra=' font-weight="bold"'),
        f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#888"/>',
        _text(LEFT + w / 2, HEIGHT - 8, flag),  # x-axis label
        _text(14, TOP + h / 2, y_label, extra=f' transform="rotate(-90 14 {TOP + h / 2:.1f})"'),
    ]
    for p, label in ticks:
        x = LEFT + w * p
        out.append(f'<line x1="{x:.1f}" y1="{TOP + h}" x2="{x:.1f}" y2="{TOP + h + 4}" stroke="#888"/>')
        short = (
            label if len(label) <= 16 else label[:15] + "…"
        )  # a long name or list: the point's title has it all
        out.append(_text(x, TOP + h + 16, short, 10))
    for y in y_ticks(low, high):
        py = y_pos(y)
        out.append(f'<line x1="{LEFT - 4}" y1="{py:.1f}" x2="{LEFT}" y2="{py:.1f}" stroke="#888"/>')
        out.append(_text(LEFT - 6, py + 3, f"{y:.4g}", 10, anchor="end"))
    for value, y, name in runs:
        x, py = xy(value, y)
        out.append(
            f'<circle class="run" cx="{x:.1f}" cy="{py:.1f}" r="3.5" fill="#1f77b4" fill-opacity="0.6">'
            f"<title>{escape(f'{name}: {y:.4g} ({flag}={_label(value)})')}</title></circle>"
        )
    for value, y, name in means:
        x, py = xy(value, y)
        out.append(
            f'<path class="mean" d="M{x - 9:.1f} {py:.1f}H{x + 9:.1f}" stroke="#d62728" stroke-width="2.5">'
            f"<title>{escape(f'{name}: mean {y:.4g}')}</title></path>"
        )
    return [*out, "</g>"]


def sweep_svg(title: str, y_label: str, flags: list[str], runs: list, means: list) -> str:
    """The figure: `runs` [({flag: value}, metric, run name)] one per seed run, `means` [({flag: value}, mean,
    configuration name)] one per configuration; one panel per flag of `flags`, 3 to a row."""
    values = [y for _, y, _ in runs] + [y for _, y, _ in means]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(low) * 0.05 or 1.0
    rows = math.ceil(len(flags) / PER_ROW)
    width, height = WIDTH * min(len(flags), PER_ROW), HEADER + HEIGHT * rows
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
        _text(width / 2, 20, title, 14, extra=' font-weight="bold"'),
        '<circle cx="20" cy="38" r="3.5" fill="#1f77b4" fill-opacity="0.6"/>',
        _text(30, 42, "one seed run", 11, anchor="start"),
        '<path d="M111 38H129" stroke="#d62728" stroke-width="2.5"/>',
        _text(136, 42, "configuration mean", 11, anchor="start"),
    ]
    for i, flag in enumerate(flags):
        x, y = WIDTH * (i % PER_ROW), HEADER + HEIGHT * (i // PER_ROW)
        out.append(f'<g transform="translate({x} {y})">')
        points = [(v.get(flag, NOT_RECORDED), m, name) for v, m, name in runs]
        marks = [(v.get(flag, NOT_RECORDED), m, name) for v, m, name in means]
        out.extend(panel(flag, y_label, points, marks, (low - pad, high + pad)))
        out.append("</g>")
    return "\n".join([*out, "</svg>", ""])
