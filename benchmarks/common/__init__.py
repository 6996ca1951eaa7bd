"""What the benchmarks (and tests/) share: shapes and batches (spec), model and optimizer builders (models), tiny
random configs and models (tiny), the hand-written reference encoder (reference), child processes (process), JSON
files (output). No module here imports another benchmarks subpackage."""
