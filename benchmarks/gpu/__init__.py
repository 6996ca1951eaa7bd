"""The sections of the GPU check (`python -m benchmarks.gpu_check`): the tiny backbones and get_model loading they
share (models), hand-written references vs the model (correctness), which SDPA kernel runs (sdpa), step time and
memory per method and precision (speed), torch.compile in a child process (compile)."""
