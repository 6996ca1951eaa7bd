"""The parts of the time-to-accuracy benchmark (`python -m benchmarks.time_to_accuracy`): the variants, their run.py
flags and the cell order (grid), one cell and running the unfinished ones (cell), the report (report), the
seconds-long smoke path on a tiny model and generated data (smoke)."""
