"""Cost versus sequence length on an accelerator: every sequence architecture from 256 to
32768 steps at two batch sizes, with fitted exponents.

Each cell trains a few steps on `adding` (a sequence of T two-feature steps whose length
is its only cost parameter) and records the training step time, tokens/s, the compiled
training step's peak memory and the forward-only time; `archbench report` fits the
exponent p of cost ∝ T^p per architecture and batch size (benchmarks/results/scaling.py)
and plots cost against T on log-log axes. Architectures: every registered one that reads
sequences (adding serves them all; image and encoder-decoder backbones cannot run it), a
plug-in's included, at equal parameters (size small). A cell that runs out of device
memory is recorded as `oom` and the sweep goes on: attention's T^2 scores reach that at
the longest lengths.

Command: archbench run --suite scaling
Runtime: not measured (no accelerator was available when it was written): 160 cells
(10 architectures x 8 lengths x 2 batch sizes), each a compilation and 20 short steps;
plan for about an hour on one GPU, most of it compilation. A cell still running after
20 minutes is recorded as `timeout`.
Results (expected from scaling-cpu and the algorithms, not yet measured): attention's
step time and memory grow with exponents near 2 at the longest lengths, the recurrences',
the TCN's and the LRU's near 1; on a GPU the recurrences' sequential scan keeps their
step time on its floor (latency per step, not FLOPs) for longer than on a CPU.
"""
from archbench.benchmarks.config import suite_config, task_plan

LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
BATCH_SIZES = (8, 32)


def get_config():
  return suite_config(
      name='scaling', doc=__doc__, size='small',
      execution={'time_limit_s': 1200.0},
      # Four timing windows of five steps; the first is the warm-up.
      train=dict(steps=20, steps_per_dispatch=5, warmup_steps=0),
      tasks={'adding': task_plan({'eval_size': 8}, sweep=('length', LENGTHS),
                                 sweep_probe='cost', batch_sizes=BATCH_SIZES)})
