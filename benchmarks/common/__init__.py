"""What the benchmarks share with tests/: tiny random configs and models (tiny), the hand-written reference encoder
(reference)."""
