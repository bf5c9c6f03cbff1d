"""Every architecture on the tasks that show what it does, at size small (100k), three seeds.

Command: archbench run   (same as: archbench run --suite quick)
Runtime: 3 min 8 s wall time for its 75 cells on a 2-core AMD EPYC VM (December 2026),
compilation included, as two worker processes, one per core (about 5 minutes as one
process; the results are bit for bit the same). Two processes share the cores, so their step times
are slower (by 1.0x to 1.9x, differently per architecture): the reference run measures
with `--workers 1` for its performance table.
Protocol (docs/protocol.md): every architecture on a task gets the same settings (no
per-architecture exceptions) and three seeds; each cell validates about ten times and
stops at the task's solved threshold (steps_to_target in its record), so a generous step
budget costs only the cells that need it; the test set is evaluated once, at the end.
Each task runs the architectures whose comparison matters most there (every architecture
appears at least once; `--archs` runs others too); `standard` runs the full matrix.
Results: results/quick-cpu/ (`archbench run --workers 1 --out results/quick-cpu`;
summary.md: accuracy with 95% intervals, pairwise tests, steps to solve, performance);
the manual's page docs/studies/quick.md shows its tables,
generated from that summary, and what they show.
"""
from archbench.benchmarks.config import suite_config, task_plan

_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50,
              stop_at_target=True)
_SEEDS = (0, 1, 2)


def get_config():
  return suite_config(
      name='quick', doc=__doc__, size='small', train=_TRAIN, seeds=_SEEDS, workers=2,
      tasks={
          'adding': task_plan({'length': 30}, {'steps': 600},
                              archs=('rnn', 'lstm', 'gru', 'bilstm', 'transformer', 'tcn',
                                     'lru')),
          'copy': task_plan({'length': 10}, {'steps': 800},
                            archs=('rnn', 'lstm', 'gru', 'transformer', 'tcn', 'lru')),
          'digits': task_plan({}, {'steps': 600, 'warmup_steps': 30},
                              archs=('cnn', 'vit', 'transformer', 'birnn', 'bigru')),
          # Validation decodes greedily (8 forward passes a batch): 300 numbers suffice to
          # see when a model reaches 95% exact match.
          'translate': task_plan({'val_size': 300}, {'steps': 1000},
                                 archs=('lstm', 'decoder', 'encdec')),
          # A small source (8 characters, 3 allowed after each pair: 64 contexts), so
          # that 400 steps reach the entropy floor; samples are scored for validity.
          'lm': task_plan({'length': 32, 'alphabet_size': 8, 'support': 3},
                          {'steps': 400, 'warmup_steps': 30}, archs=('lstm', 'decoder')),
          'forecast': task_plan({'length': 32, 'horizon': 8},
                                {'steps': 300, 'warmup_steps': 30}, archs=('lstm', 'tcn')),
      })
