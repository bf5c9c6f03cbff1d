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
differ by up to 2x). Reference run, tables and plot: results/scaling-cpu/.
Results (fitted over T = 256..1024, ± standard error; seed 0 on the reference machine):
the transformer's training step time grows as T^2.14 ± 0.07 (batch 2) and T^2.01 ± 0.22
(batch 8), its forward time as T^2.2-2.3 and its memory as T^1.95 / T^1.84; the causal
decoder's alike (step 2.2-2.5, memory 1.8-1.9) with wider errors. The six RNNs' step times
grow as T^0.9-1.6, the TCN's as T^1.0 / T^1.4 and the LRU's as T^0.96 ± 0.18: linear in
principle, with errors up to 0.4 from the shared machine's timing noise at three timed
steps (the Elman RNN at batch 2 gets no exponent: its step at T=256 had not doubled its
T=64 floor). Their memory grows as T^0.82-0.96 (the LRU's 1.03): linear, with the
parameters and optimiser state as a floor. At T=1024 and batch 8, attention's step takes
2.8-3.0 s and 1 GiB against 0.24-0.64 s and 72-186 MiB for the recurrences, TCN and
LRU.
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
