"""The project's benchmarks. Every entry runs from the repository root as a module:

    python -m benchmarks.speed              CPU speed and memory: fine-tuning vs P-tuning v2 vs prompt tuning
    python -m benchmarks.gpu_check          the GPU check (correctness, SDPA kernels, speed, compile); --smoke on CPU
    python -m benchmarks.time_to_accuracy   dev F1 against training wall-clock per variant (resumable); --smoke
    python -m benchmarks.serving            K adapters on one backbone
    python -m benchmarks.reproduce          the method comparison on real data
    python -m benchmarks.eval_cost          evaluation cost, the original's protocol vs the default
    python -m benchmarks.retrieval_sets     BEIR-layout retrieval sets from the shared data (for PT-Retrieval)

The entries are the modules at this level (plus paths.py: where the data, runs, results and MiniLM are); their parts
live in subpackages: common/ (shapes and batches, builders, tiny configs, the hand-written reference encoder, child
processes, JSON), cpu/ (speed.py's steps, memory, sections, report), gpu/ (gpu_check.py's sections) and tta/
(time_to_accuracy.py's grid, cells, report, smoke path). Child processes run `python -m benchmarks.<module>` from the
root too. Nothing here edits sys.path, and no module imports tests/ (tests import benchmarks.common).
"""
