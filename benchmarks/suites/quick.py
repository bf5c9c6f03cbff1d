"""Every architecture on the tasks that show what it does, at size small (100k).

Command: archbench run   (same as: archbench run --suite quick)
Runtime: 11 min 27 s measured on a 2-core Intel Xeon (35 cells), compilation included
(machines of this kind differ by up to 2x: the 25-cell version without the extra seeds
took 4 min 39 s on a 2-core AMD EPYC). To fit, each task runs the architectures whose
comparison matters most there (every architecture appears at least once; `--archs` runs
others too); `standard` runs the full matrix of these tasks. The five cells whose result
varies from seed to seed (and between machines) run three seeds.
Results: the reference run (seed 0, or mean ± std of seeds 0-2, on the reference
machine) is committed in results/quick-cpu/ (summary.md: accuracy, held-out loss and
performance tables); the manual's page docs/studies/quick.md shows its
tables, generated from that summary, and what they show.
"""
from archbench.benchmarks.config import suite_config, task_plan

_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50)
# Three seeds where one seed's result is not to be trusted: cells whose result moved by
# more than a few points between two machines of the same kind (float results differ
# between CPUs, and these cells sit on a knife edge), so that `archbench compare` and
# `archbench reproduce` can tell a real change from seed noise there.
_VARYING = (0, 1, 2)


def get_config():
  return suite_config(
      name='quick', doc=__doc__, size='small', train=_TRAIN,
      tasks={
          'adding': task_plan({'length': 30}, {'steps': 600},
                              archs=('rnn', 'lstm', 'gru', 'birnn', 'transformer', 'tcn',
                                     'lru'), arch_seeds={'rnn': _VARYING}),
          'copy': task_plan({'length': 10}, {'steps': 800}, arch_train={'gru': {'lr': 1e-2}},
                            archs=('rnn', 'lstm', 'gru', 'transformer', 'tcn', 'lru'),
                            arch_seeds={'rnn': _VARYING, 'gru': _VARYING}),
          'digits': task_plan({}, {'steps': 300, 'warmup_steps': 30},
                              arch_train={'cnn': {'steps': 150}, 'bilstm': {'steps': 600},
                                          'bigru': {'steps': 600}},
                              archs=('cnn', 'vit', 'transformer', 'bilstm', 'bigru'),
                              arch_seeds={'bilstm': _VARYING, 'bigru': _VARYING}),
          'translate': task_plan({}, {'steps': 1000}, archs=('lstm', 'decoder', 'encdec')),
          # A small source (8 characters, 3 allowed after each pair: 64 contexts), so
          # that 400 steps reach the entropy floor; samples are scored for validity.
          'lm': task_plan({'length': 32, 'alphabet_size': 8, 'support': 3},
                          {'steps': 400, 'warmup_steps': 30}, archs=('lstm', 'decoder')),
          'forecast': task_plan({'length': 32, 'horizon': 8},
                                {'steps': 300, 'warmup_steps': 30}, archs=('lstm', 'tcn')),
      })
