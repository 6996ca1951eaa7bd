"""Time to accuracy (issue 11): dev F1 against TRAINING wall-clock, per variant, fine-tuning vs P-tuning v2 levers.

    python -m benchmarks.time_to_accuracy                      # every cell (resumable), then the report
    python -m benchmarks.time_to_accuracy --variants defaults init_tokens --datasets conll2003 --seeds 1
    python -m benchmarks.time_to_accuracy --report-only        # rebuild results/time_to_accuracy.{json,md,svg}
    python -m benchmarks.time_to_accuracy --smoke              # tiny random model + generated data, seconds
    python -m benchmarks.time_to_accuracy --list               # the cells in run order, done or not

The grid (datasets, variants, levers, BEST, the outside recipe, WHY) is benchmarks/tta/grid.py. Every cell is one
run.py main() in a subprocess (benchmarks/tta/cell.py) that records, after every epoch, the dev F1 and the
cumulative training seconds with evaluation excluded; test F1 is scored once at the best dev epoch (the trainer's
default). A cell whose cell.json recorded the same run.py flags is not run again; one whose flags changed (e.g. BEST
was filled in) is run afresh. The report's definitions are in benchmarks/tta/report.py; --smoke runs the whole path
on a tiny model (benchmarks/tta/smoke.py).
"""

from __future__ import annotations

import argparse
import json
import os

from benchmarks import paths
from benchmarks.paths import RESULTS, minilm_path
from benchmarks.tta import report as tta_report
from benchmarks.tta import smoke
from benchmarks.tta.cell import run_cells
from benchmarks.tta.grid import BEST as BEST  # re-exported: the recipe scripts' test reads BEST from here
from benchmarks.tta.grid import DATASETS, GRID, OUTSIDE_VARIANTS, SEEDS, VARIANTS, WHY, cell_dir
from benchmarks.tta.grid import variant_options as variant_options  # re-exported, as BEST

RUNS = os.path.join(paths.RUNS, "time_to_accuracy")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--variants", nargs="+", default=VARIANTS + OUTSIDE_VARIANTS,
                        choices=VARIANTS + OUTSIDE_VARIANTS)  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--list", action="store_true", help="print the cells in run order and exit")
    parser.add_argument("--smoke", action="store_true", help="tiny random model + generated data (seconds)")
    parser.add_argument("--out", default=None, help="folder for runs/ and results/ (default: benchmarks/)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="screening: cap every cell at this many epochs (its own row, '<variant>-e<N>')",
    )
    parser.add_argument("--threads", type=int, default=None,
                        help="torch/OpenMP threads per cell (recorded in cell.json; compare minutes only at equal "
                        "threads)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        return smoke.run(args.out)
    runs = os.path.join(args.out, "runs") if args.out else RUNS
    results = os.path.join(args.out, "results") if args.out else RESULTS
    order = GRID.cells(args.datasets, args.variants, args.seeds)
    if args.list:
        for dataset, variant, seed in order:
            done = tta_report.load_cell(cell_dir(runs, dataset, variant, seed, args.epochs))
            print(f"{dataset:10s} {variant:18s} seed {seed:2d}  {'done' if done else '-'}")
        return {}
    if not args.report_only:
        env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
        run_cells(GRID, order, runs, minilm_path(), env=env, epochs=args.epochs)
    previous = tta_report.load_report(results)  # its kept cells and rows: a fresh clone rebuilds, never loses
    report = tta_report.build(runs, recipe=GRID.recipe_text(), why=WHY, previous=previous)
    tta_report.write(report, results)
    print(json.dumps(report["summary"], indent=1))
    return report


if __name__ == "__main__":
    main()
