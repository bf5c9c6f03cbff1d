"""Does everything run? Every architecture x task kind, and every offline task, briefly.

Command: archbench run --suite smoke
Runtime: about 2 minutes on a 2-core CPU. It is nearly all compilation, so it is made
cheap: every backbone at depth 1 (the default depths are covered by the unit tests at
tiny and by `quick` at small), compiled without backend optimisation, two cells at
once (XLA compiles on one thread). Its step times are therefore not representative.
Every architecture runs on the first four tasks, which cover every task kind (per-token,
causal per-token via translate's prefix LM, regression, classification, seq2seq); the
other offline tasks each run with three architectures of different families (the
Chomsky-hierarchy tasks with one each), so each generator, spec and metric goes through
the harness without paying for every pair; spoken_digits_mini (speech synthesised by
espeak-ng, bundled with archbench) runs with every sequence architecture.
A plug-in architecture (--plugin) runs on every one of the first four tasks it can serve,
and on spoken_digits_mini if it reads sequences.
Results: meaningless accuracies (10 steps); every status `ok`. The tests run it.
"""
from archbench.benchmarks.config import suite_config, task_plan


def get_config():
  return suite_config(
      name='smoke', doc=__doc__, size='tiny', fast_compile=True, workers=2, depth=1,
      train=dict(steps=10, batch_size=8, lr=1e-3, warmup_steps=2, steps_per_dispatch=5,
                 eval_batch_size=64),
      tasks={
          'adding': task_plan({'length': 16, 'eval_size': 64}),
          'copy': task_plan({'length': 8, 'eval_size': 64}),
          'digits': task_plan(),
          'translate': task_plan({'max_value': 1000, 'test_size': 64}),
          'pdigits': task_plan(archs=('cnn', 'vit', 'bigru')),
          'pixels': task_plan({'levels': 4}, archs=('lstm', 'decoder', 'tcn')),
          'selective_copy': task_plan({'length': 16, 'num_tokens': 4, 'eval_size': 64},
                                      archs=('gru', 'transformer', 'lru')),
          'mqar': task_plan({'num_pairs': 8, 'num_queries': 4, 'vocab_size': 32,
                             'eval_size': 64}, archs=('rnn', 'decoder', 'tcn')),
          'listops': task_plan({'max_depth': 4, 'max_args': 5, 'min_length': 16,
                                'max_length': 48, 'num_examples': 640,
                                'test_fraction': 0.1}, archs=('bilstm', 'transformer', 'lru')),
          'lm': task_plan({'length': 32, 'eval_size': 64}, archs=('lstm', 'decoder', 'tcn')),
          'forecast': task_plan({'length': 16, 'horizon': 4, 'train_length': 600,
                                 'test_length': 200}, archs=('gru', 'transformer', 'lru')),
          # Speech on the clips bundled with archbench (nothing to prepare), as log-mel
          # frames: every architecture that reads sequences of vectors.
          'spoken_digits_mini': task_plan(),
          'random_walk': task_plan({'length': 16, 'horizon': 4, 'train_length': 600,
                                    'test_length': 200}, archs=('lstm', 'tcn')),
          # The Chomsky-hierarchy tasks share one layout (data/chomsky.py): one
          # architecture each, every family once, so each generator runs through the
          # harness at little cost.
          **{task: task_plan({'length': 8, 'eval_size': 64}, archs=(arch,))
             for task, arch in (('parity_check', 'lstm'), ('even_pairs', 'transformer'),
                                ('modular_arithmetic', 'lru'), ('cycle_navigation', 'tcn'),
                                ('reverse_string', 'gru'), ('stack_manipulation', 'decoder'),
                                ('duplicate_string', 'rnn'), ('binary_addition', 'bilstm'))},
      })
