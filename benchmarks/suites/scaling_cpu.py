"""Cost versus sequence length on a CPU: every sequence architecture from 64 to 1024
steps at batch sizes 2 and 8, with fitted exponents.

The `scaling` suite cut to fit 15 minutes of a 2-core CPU: four lengths (the shortest
measures the floor of fixed costs, the three others are the points an exponent is
fitted on), four training steps per cell (one warm-up, three timed). Each cell records
the training step time, tokens/s, the compiled training step's peak memory and the
forward-only time; `archbench report` writes the fitted exponents, the costs per length
and the log-log plot (scaling_adding.png). Attention stops at T=1024 here: its training
step at batch 8 takes about 3 s there on this CPU and grows about 4x per doubling of T.
The LRU runs at batch 8 only: its associative scan compiles slowly (10-24 s per training
step in the reference run, up to 70 s under heavier load, against 3-5 s for attention),
and its second batch size would take the suite past 15 minutes.

Command: archbench run --suite scaling-cpu
Runtime: 14 min 54 s measured on a 2-core Intel Xeon VM (76 cells, compilation included;
it was shared with two other users' jobs at a load average of 4-5; machines of this kind
differ by up to 2x).
Results: the reference run (seed 0, on the reference machine) is committed in
results/scaling-cpu/ (summary.md: the fitted exponents and the cost at each length;
scaling_adding.png); the manual's page docs/studies/scaling.md shows its
exponent table, generated from that summary, and what it shows.
"""
from archbench.benchmarks.config import suite_config, task_plan

LENGTHS = (64, 256, 512, 1024)
BATCH_SIZES = (2, 8)


def get_config():
  return suite_config(
      name='scaling-cpu', doc=__doc__, size='small',
      # One step per timing window: at T=1024 a step takes up to seconds here.
      train=dict(steps=4, steps_per_dispatch=1, warmup_steps=0),
      tasks={'adding': task_plan({'eval_size': 8}, sweep=('length', LENGTHS),
                                 sweep_probe='cost', batch_sizes=BATCH_SIZES,
                                 arch_train={'lru': {'batch_size': 8}})})
