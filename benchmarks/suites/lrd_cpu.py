"""Long-range dependencies on a CPU: six families, adding and copy at growing lengths.

Accuracy versus length, the longest solved length and gradient-versus-distance curves
(at init and after training) for rnn, lstm, gru, transformer, lru and tcn.

Command: archbench run --suite lrd-cpu
Runtime: 8 min 21 s measured on a 2-core CPU (42 cells at size tiny, compilation
included).
Results: the reference run (seed 0, on the reference machine) is committed in
results/lrd-cpu/ (summary.md: accuracy versus length, longest solved length, gradient
versus distance; the plots beside it); the manual's page docs/studies/long-range.md
shows its tables, generated from that summary, and what they show.
"""
from archbench.benchmarks.config import suite_config, task_plan


def get_config():
  return suite_config(
      name='lrd-cpu', doc=__doc__, size='tiny',
      archs=('rnn', 'lstm', 'gru', 'transformer', 'lru', 'tcn'),
      train=dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50),
      tasks={
          # The LRU trains with a larger step: at 3e-3 it had not fitted adding at T=128
          # after 1000 steps (MSE 0.042) though its gradient barely decays; at 1e-2 it
          # does (0.0076). The others keep quick's 3e-3.
          'adding': task_plan({'eval_size': 500}, {'steps': 1000},
                              arch_train={'lru': {'lr': 1e-2}},
                              sweep=('length', (16, 32, 64, 128)), gradient_probe_at=(128,)),
          'copy': task_plan({'eval_size': 500}, {'steps': 600},
                            sweep=('length', (8, 32, 64)), gradient_probe_at=(64,)),
      })
