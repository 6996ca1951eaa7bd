"""The parts of the CPU speed benchmark (`python -m benchmarks.speed`): the variants built per Spec (variants),
one step and round-robin timing (timing), exact byte counts and the peak-RSS worker (memory), one model's run, the
sweeps and the investigation (sections), the targets and printed tables (report)."""
