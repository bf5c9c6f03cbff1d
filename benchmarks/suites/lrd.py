"""Long-range dependencies, the full study for an accelerator (840 cells).

Every sequence architecture on the four long-range tasks from 16 to 1024 steps, three
seeds.

Command: archbench run --suite lrd
Runtime: not measured (no accelerator was available when it was written). It is 840
cells (10 architectures x 4 tasks x 7 lengths x 3 seeds) of 3000 steps each at up to
1024 positions. Estimated (archbench estimate --suite lrd):
about 1,350 CPU-hours from the rates measured on a 2-core CPU, and about 4.5 h on one
GPU under stated assumptions; add --config.precision=bfloat16 on a GPU, and
--config.executor=processes --workers 8 (or =ray) to use more. `--tasks`, `--archs` and
`--seed` run parts of it. A cell still training after an hour is recorded as `timeout`
(--config.execution.time_limit_s changes it); a killed run continues with --resume.
Results (expected from lrd-cpu and the literature, not yet measured): the Elman RNN's
longest solved length is the shortest on every task; LSTM and GRU reach further on
adding; on the content-dependent tasks (selective_copy, mqar) attention solves every
length while time-invariant mixers (the TCN, and the LRU, which has no input-dependent
gating) fall off, as Gu & Dao (2023) and Arora et al. (2023) report.
"""
from archbench.benchmarks.config import suite_config, task_plan

_LENGTHS = (16, 32, 64, 128, 256, 512, 1024)


def get_config():
  sweep = dict(sweep=('length', _LENGTHS), gradient_probe_at=(256,))
  return suite_config(
      name='lrd', doc=__doc__, size='small', seeds=(0, 1, 2),
      # An hour per cell: far more than a GPU needs, and a guard against one cell (a long
      # recurrence on a slow device) holding the whole study.
      execution={'time_limit_s': 3600.0},
      train=dict(steps=3000, batch_size=64, lr=1e-3, warmup_steps=200,
                 steps_per_dispatch=100),
      tasks={
          'adding': task_plan({'eval_size': 1000}, **sweep),
          'copy': task_plan({'eval_size': 1000}, **sweep),
          'selective_copy': task_plan({'eval_size': 1000}, **sweep),
          'mqar': task_plan({'eval_size': 1000, 'num_queries': 8, 'vocab_size': 1024},
                            sweep=('num_pairs', (8, 16, 32, 64, 128, 256, 512)),
                            gradient_probe_at=(128,)),
      })
