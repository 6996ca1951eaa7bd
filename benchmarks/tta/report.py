"""The time-to-accuracy report (benchmarks/time_to_accuracy.py): per-epoch cell records -> summary, table, plot.

Definitions (entity F1 in points 0-100):
- a variant's curve: per epoch, the mean over seeds of dev F1 and of cumulative training minutes (evaluation
  excluded), with the std of dev F1 over seeds (the plot's band); epochs that every seed reached.
- best dev / test: per seed the best dev epoch's dev F1 and the test F1 scored with that epoch's state; mean ± std.
- fine-tuning = the learning rate of the grid with the highest mean best dev F1; target = its mean best dev − 1.
- epochs / minutes to target: the first epoch where the variant's MEAN curve reaches the target; null if never.
- fine-tuning's minutes to its best: the mean curve's minutes at the epoch of its highest mean dev F1.
- time_ratio = the recommended recipe's ("best") minutes to target / fine-tuning's minutes to its best.
- dev_gap / test_gap = recommended recipe minus fine-tuning (best dev, test at best dev), paired by seed: the mean
  over the seeds both have (gap_seeds) of the per-seed differences, with their std (dev_gap_std, test_gap_std);
  equal to the difference of the means when both ran the same seeds. target_met: both gaps >= -1 and
  time_ratio <= 2.
- last train loss: the training loss the Trainer logged last (every --logging_steps, dropout on), read from the
  cell's log.txt; mean over seeds. Far above fine-tuning's = the variant has not fit the training set (not overfit).
- cells: every cell record the report stands on (runs/ is not committed: a fresh clone rebuilds from these);
  carried: what an earlier report held with no record behind it any more, kept unchanged (see carry()).
"""

from __future__ import annotations

import ast
import json
import os
import statistics

from benchmarks.common.output import read_json, write_json

FINETUNE_PREFIX = "finetune_lr"
COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]  # fmt: skip


def load_cell(out: str) -> dict | None:
    return read_json(os.path.join(out, "cell.json"))


def last_train_loss(out: str) -> float | None:
    """The last training loss the Trainer printed to out/log.txt ({'loss': '0.05', ..., 'epoch': '29.6'})."""
    loss = None
    try:
        with open(os.path.join(out, "log.txt")) as f:
            for line in f:
                if line.startswith("{'loss'"):
                    loss = float(ast.literal_eval(line.strip())["loss"])
    except OSError:
        return None
    return loss


def load_cells(runs: str) -> dict:
    """{dataset: {variant: {seed: cell}}} from runs/<dataset>/<variant>-seed<k>/cell.json."""
    table: dict = {}
    for dataset in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        for name in sorted(os.listdir(os.path.join(runs, dataset))):
            variant, _, seed = name.rpartition("-seed")
            cell = load_cell(os.path.join(runs, dataset, name))
            if cell is not None and seed.isdigit():
                try:
                    with open(os.path.join(runs, dataset, name, "options.txt")) as f:
                        cell["options"] = f.read().strip()
                except OSError:
                    cell["options"] = None
                cell["train_loss_end"] = last_train_loss(os.path.join(runs, dataset, name))
                table.setdefault(dataset, {}).setdefault(variant, {})[int(seed)] = cell
    return table


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def curve(by_seed: dict) -> list[dict]:
    """Mean curve over seeds: [{"epoch", "minutes", "dev_f1", "dev_std"}] for the epochs every seed has."""
    n = min(len(cell["epochs"]) for cell in by_seed.values())
    out = []
    for i in range(n):
        rows = [cell["epochs"][i] for cell in by_seed.values()]
        dev, dev_std = mean_std([r["dev_f1"] for r in rows])
        out.append({"epoch": rows[0]["epoch"], "minutes": statistics.mean(r["train_seconds"] for r in rows) / 60,
                    "dev_f1": dev, "dev_std": dev_std})  # fmt: skip
    return out


def reach(points: list[dict], target: float | None) -> tuple[int | None, float | None]:
    """(epoch, minutes) of the first point whose mean dev F1 reaches target; (None, None) if none does."""
    for p in points if target is not None else []:
        if p["dev_f1"] >= target:
            return p["epoch"], p["minutes"]
    return None, None


def per_seed(by_seed: dict, key: str) -> dict[int, float]:
    """{seed: 100 * best[key]} for the seeds whose cell recorded it (best_eval_f1 / best_test_f1)."""
    return {seed: 100 * c["best"][key] for seed, c in by_seed.items() if key in c["best"]}


def paired_gap(a: dict, b: dict, key: str) -> tuple[list[int], float | None, float | None]:
    """(common seeds, mean, std) of a[seed] - b[seed] over the seeds both variants have for key."""
    x, y = per_seed(a, key), per_seed(b, key)
    seeds = sorted(set(x) & set(y))
    return (seeds, *mean_std([x[s] - y[s] for s in seeds]))


def variant_row(by_seed: dict) -> dict:
    devs = list(per_seed(by_seed, "best_eval_f1").values())
    tests = list(per_seed(by_seed, "best_test_f1").values())
    (dev, dev_std), (test, test_std) = mean_std(devs), mean_std(tests)
    points = curve(by_seed)
    first = next(iter(by_seed.values()))
    losses = [c["train_loss_end"] for c in by_seed.values() if c.get("train_loss_end") is not None]
    return {"train_loss_end": statistics.mean(losses) if losses else None, "seeds": sorted(by_seed), "dev": dev, "dev_std": dev_std, "test": test, "test_std": test_std,
            "curve": points, "flags": first.get("options") or " ".join(first["argv"]),
            "minutes_per_epoch": points[-1]["minutes"] / len(points) if points else None,
            "threads": sorted({str(c.get("threads", "?")) for c in by_seed.values()})}  # fmt: skip


def summarise_dataset(variants: dict, recipe: str | None) -> tuple[dict, dict]:
    """(rows per variant with reach figures, the issue's summary entry) for one dataset."""
    rows = {v: variant_row(by_seed) for v, by_seed in variants.items()}
    grid = {v: r for v, r in rows.items() if v.startswith(FINETUNE_PREFIX)}
    finetune = max(grid, key=lambda v: grid[v]["dev"]) if grid else None
    target = ft_minutes = None
    if finetune:
        target = grid[finetune]["dev"] - 1
        points = grid[finetune]["curve"]
        ft_minutes = max(points, key=lambda p: p["dev_f1"])["minutes"] if points else None
    for row in rows.values():
        row["epochs_to_target"], row["minutes_to_target"] = reach(row["curve"], target)
    best = rows.get("best")
    ratio = None
    if best and best["minutes_to_target"] is not None and ft_minutes:
        ratio = best["minutes_to_target"] / ft_minutes
    pick = lambda v, k: rows[v][k] if v in rows else None  # noqa: E731
    gap_seeds, dev_gap, dev_gap_std = [], None, None
    test_gap = test_gap_std = None
    if finetune and "best" in variants:
        gap_seeds, dev_gap, dev_gap_std = paired_gap(variants["best"], variants[finetune], "best_eval_f1")
        _, test_gap, test_gap_std = paired_gap(variants["best"], variants[finetune], "best_test_f1")
    summary = {
        "seeds": best["seeds"] if best else (rows[finetune]["seeds"] if finetune else []),
        "finetune_dev": pick(finetune, "dev") if finetune else None,
        "finetune_test": pick(finetune, "test") if finetune else None,
        "ptuning_dev": pick("best", "dev"), "ptuning_test": pick("best", "test"),
        "defaults_dev": pick("defaults", "dev"), "defaults_test": pick("defaults", "test"),
        "prompt_dev": pick("best_prompt", "dev"), "prompt_test": pick("best_prompt", "test"),
        "time_ratio": ratio, "recipe": recipe, "dev_gap": dev_gap, "test_gap": test_gap, "gap_seeds": gap_seeds,
        "dev_gap_std": dev_gap_std, "test_gap_std": test_gap_std,
        "target_met": (dev_gap is not None and test_gap is not None and dev_gap >= -1 and test_gap >= -1
                       and ratio is not None and ratio <= 2),
        "finetune_variant": finetune, "target_dev": target, "finetune_minutes_to_best": ft_minutes,
        "defaults_time_ratio": (rows["defaults"]["minutes_to_target"] / ft_minutes
                                if "defaults" in rows and rows["defaults"]["minutes_to_target"] is not None
                                and ft_minutes else None),
    }  # fmt: skip
    return rows, summary


def load_report(results: str | None) -> dict:
    """The report written last to results/time_to_accuracy.json ({} if none)."""
    try:
        with open(os.path.join(results, "time_to_accuracy.json")) as f:
            return json.load(f)
    except (TypeError, OSError, ValueError):
        return {}


def gather(runs: str, previous: dict) -> dict:
    """The cell records the report stands on: those kept in the previous report ("cells", so a fresh clone can
    rebuild it) overlaid by this machine's runs/ (a cell run again wins)."""
    table = {d: {v: {int(s): c for s, c in by_seed.items()} for v, by_seed in variants.items()}
             for d, variants in previous.get("cells", {}).items()}  # fmt: skip
    for dataset, variants in load_cells(runs).items():
        for variant, by_seed in variants.items():
            table.setdefault(dataset, {}).setdefault(variant, {}).update(by_seed)
    return table


def carry(report: dict, previous: dict) -> None:
    """Keep what no cell record backs any more (records lost with an earlier machine's runs/, before the report
    kept them): rows of the previous report, a dataset's summary when the cells lack fine-tuning or the recipe,
    outside-recipe seeds. Each is listed in report["carried"]; every row's reach is then measured against the
    dataset's (possibly carried) target. A row that new cells would rebuild from fewer seeds stops it (SystemExit)."""
    carried = report["carried"] = []
    for dataset, rows in previous.get("variants", {}).items():
        new_rows = report["variants"].setdefault(dataset, {})
        old, new = previous["summary"].get(dataset), report["summary"].get(dataset)
        if old and (new is None or new["finetune_variant"] is None or new["ptuning_dev"] is None):
            report["summary"][dataset] = dict(old)
            carried.append(f"{dataset}/summary")
        for variant, row in rows.items():
            if variant not in new_rows:
                new_rows[variant] = row
                carried.append(f"{dataset}/{variant}")
            elif not set(row["seeds"]) <= set(new_rows[variant]["seeds"]):
                raise SystemExit(
                    f"[tta] {dataset}/{variant}: the previous report's row holds seeds {row['seeds']} whose cell "
                    f"records it did not keep, the cells here only {new_rows[variant]['seeds']}; writing would "
                    f"drop seeds. Run the missing seeds as well (--seeds), then report again; nothing was written."
                )
        target = report["summary"][dataset]["target_dev"]
        for row in new_rows.values():
            row["epochs_to_target"], row["minutes_to_target"] = reach(row["curve"], target)
        report["variants"][dataset] = dict(sorted(new_rows.items()))
    for key in ("outside_recipe", "outside_defaults", "outside_theirs"):
        for seed, row in previous.get(key, {}).items():
            if seed not in report.setdefault(key, {}):
                report[key][seed] = row
                carried.append(f"{key}/{seed}")
    report["summary"]["outside_recipe"] = {s: {"dev": r["dev"], "test": r["test"]}
                                           for s, r in sorted(report["outside_recipe"].items())}  # fmt: skip


def build(runs: str, recipe: dict | None = None, why: dict | None = None,
          previous: dict | None = None) -> dict:  # fmt: skip
    """The report from the cells under runs/ plus, given the previous report, the cells it kept (see gather) and
    what no cell backs any more (see carry)."""
    previous = previous or {}
    cells = gather(runs, previous)
    report = {"summary": {}, "variants": {}, "outside_recipe": {}}
    for dataset, variants in cells.items():
        if dataset == "outside":
            continue
        rows, summary = summarise_dataset(variants, (recipe or {}).get(dataset))
        summary["why"] = (why or {}).get(dataset)
        report["summary"][dataset], report["variants"][dataset] = summary, rows
    outside = (("outside_best", "outside_recipe"), ("outside_defaults", "outside_defaults"),
               ("outside_theirs", "outside_theirs"))  # fmt: skip
    for variant, key in outside:
        for seed, cell in sorted(cells.get("outside", {}).get(variant, {}).items()):
            best = cell["best"]
            report.setdefault(key, {})[str(seed)] = {
                "dev": 100 * best["best_eval_f1"], "test": 100 * best.get("best_test_f1", float("nan")),
                "curve": [e["dev_f1"] for e in cell["epochs"]]}  # fmt: skip
    carry(report, previous)  # also writes the outside-recipe summary, over kept and carried seeds
    # the script's words (not measurements), on a carried summary too
    for key, texts in (("recipe", recipe or {}), ("why", why or {})):
        for dataset, text in texts.items():
            if text and dataset in report["summary"]:
                report["summary"][dataset][key] = text
    report["cells"] = cells
    return report


def _fmt(mean, std=None, digits=1) -> str:
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def markdown(report: dict) -> str:
    lines = ["# Time to accuracy: fine-tuning vs P-tuning v2 levers (all-MiniLM-L6-v2, CPU)", "",
             "Generated by `python -m benchmarks.time_to_accuracy` (definitions: benchmarks/tta/report.py). Entity F1",
             "in points; mean ± std over seeds; minutes = training wall-clock with evaluation excluded. A row",
             "`<variant>-e<N>` is a screening run capped at N epochs (`--epochs N`): compare its dev F1 with the first",
             "N epochs of the uncapped rows (the ×0.95-per-epoch schedule does not depend on the epoch count).", ""]  # fmt: skip
    for dataset, rows in report["variants"].items():
        s = report["summary"][dataset]
        lines += [f"## {dataset}", "", f"Fine-tuning = {s['finetune_variant']}; target = its best mean dev F1 − 1 = "
                  f"{_fmt(s['target_dev'])}; fine-tuning reaches its best after {_fmt(s['finetune_minutes_to_best'])} "
                  f"min. time_ratio (recommended recipe) = {_fmt(s['time_ratio'], digits=2)}; defaults: "
                  f"{_fmt(s['defaults_time_ratio'], digits=2)}. Recommended recipe minus fine-tuning, paired over seeds "
                  f"{','.join(map(str, s['gap_seeds'])) or '—'}: dev {_fmt(s['dev_gap'], s['dev_gap_std'])}, test "
                  f"{_fmt(s['test_gap'], s['test_gap_std'])}; target met: {s['target_met']}.", "",
                  *([f"Why: {s['why']}", ""] if s.get("why") else []),
                  "| variant | seeds | best dev F1 | test F1 at best dev | epochs to target | minutes to target | "
                  "min / epoch | last train loss | threads | flags |", "|---" * 10 + "|"]  # fmt: skip
        for variant, r in rows.items():
            lines.append(
                f"| {variant} | {','.join(map(str, r['seeds']))} | {_fmt(r['dev'], r['dev_std'])} | "
                f"{_fmt(r['test'], r['test_std'])} | {r['epochs_to_target'] or '—'} | "
                f"{_fmt(r['minutes_to_target'])} | {_fmt(r['minutes_per_epoch'], digits=2)} | "
                f"{_fmt(r['train_loss_end'], digits=3)} | {','.join(r['threads'])} | `{r['flags']}` |"
            )
        lines.append("")
    titles = (("outside_recipe", "recommended options"), ("outside_defaults", "defaults"),
              ("outside_theirs", "the independent implementation's known differences"))  # fmt: skip
    for key, title in titles:
        if report.get(key):
            lines += [f"## Outside recipe ({title}): 1,000 CoNLL-2003 sentences, 8 epochs, lr 3e-2, P 16, batch 32",
                      "", "| seed | best dev F1 | test F1 | dev F1 per epoch |", "|---|---|---|---|"]  # fmt: skip
            for seed, r in report[key].items():
                curve = " ".join(f"{x:.1f}" for x in r["curve"])
                lines.append(f"| {seed} | {r['dev']:.1f} | {r['test']:.1f} | {curve} |")
            lines.append("")
    if report.get("carried"):
        lines += ["Carried unchanged from the previous report (their per-seed cell records predate the report's "
                  "`cells` and are not on this machine): " + ", ".join(report["carried"]) + ".", ""]  # fmt: skip
    lines.append("![dev F1 against training minutes](time_to_accuracy.svg)")
    return "\n".join(lines) + "\n"


def svg(report: dict) -> str:
    """One panel per dataset: mean dev F1 against mean training minutes per variant, band = ± std over seeds."""
    panels = list(report["variants"].items())
    pw, ph, left, top = 520, 320, 50, 30
    width, height = 20 + pw * max(1, len(panels)), ph + 40 + 14 * 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="10">']  # fmt: skip
    names = sorted({v for _, rows in panels for v in rows})
    colour = {v: COLOURS[i % len(COLOURS)] for i, v in enumerate(names)}
    for k, (dataset, rows) in enumerate(panels):
        x0, w, h = 10 + k * pw + left, pw - left - 20, ph - top - 30
        points = [p for r in rows.values() for p in r["curve"]]
        xmax = max([p["minutes"] for p in points] + [1e-9])
        ymin = min([p["dev_f1"] - p["dev_std"] for p in points] + [100.0])
        ymin = max(0.0, 10 * int(ymin // 10))
        sx = lambda m, x0=x0, w=w, xmax=xmax: x0 + w * m / xmax  # noqa: E731
        sy = lambda f, h=h, lo=ymin: top + h * (1 - (f - lo) / max(1e-9, 100 - lo))  # noqa: E731
        out.append(f'<text x="{x0}" y="{top - 10}">{dataset}: dev F1 vs training minutes</text>')
        out.append(f'<rect x="{x0}" y="{top}" width="{w}" height="{h}" fill="none" stroke="black"/>')
        for i in range(5):
            f, m = ymin + (100 - ymin) * i / 4, xmax * i / 4
            out.append(f'<text x="{x0 - 4}" y="{sy(f) + 3}" text-anchor="end">{f:.0f}</text>')
            out.append(f'<text x="{sx(m)}" y="{top + h + 12}" text-anchor="middle">{m:.1f}</text>')
        target = report["summary"][dataset].get("target_dev")
        if target is not None and target >= ymin:
            out.append(f'<line x1="{x0}" y1="{sy(target)}" x2="{x0 + w}" y2="{sy(target)}" stroke="#999" '
                       'stroke-dasharray="4 3"><title>target</title></line>')  # fmt: skip
        for variant, r in rows.items():
            c = r["curve"]
            if not c:
                continue
            upper = [f"{sx(p['minutes']):.1f},{sy(min(100, p['dev_f1'] + p['dev_std'])):.1f}" for p in c]
            lower = [
                f"{sx(p['minutes']):.1f},{sy(max(ymin, p['dev_f1'] - p['dev_std'])):.1f}" for p in c[::-1]
            ]
            line = [f"{sx(p['minutes']):.1f},{sy(max(ymin, p['dev_f1'])):.1f}" for p in c]
            out.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{colour[variant]}" opacity="0.15"/>'
            )
            out.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{colour[variant]}">'
                       f"<title>{variant}</title></polyline>")  # fmt: skip
    for i, variant in enumerate(names):
        x, y = 10 + left + 170 * (i % 5), ph + 20 + 14 * (i // 5)
        out.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{colour[variant]}"/>'
                   f'<text x="{x + 14}" y="{y}">{variant}</text>')  # fmt: skip
    return "\n".join(out + ["</svg>"]) + "\n"


def write(report: dict, results: str) -> None:
    write_json(os.path.join(results, "time_to_accuracy.json"), report)
    with open(os.path.join(results, "time_to_accuracy.md"), "w") as f:
        f.write(markdown(report))
    with open(os.path.join(results, "time_to_accuracy.svg"), "w") as f:
        f.write(svg(report))
