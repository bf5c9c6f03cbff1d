"""Long-range dependencies on a CPU: six families, adding and copy at growing lengths.

Accuracy versus length, the longest solved length and gradient-versus-distance curves
(at init and after training) for rnn, lstm, gru, transformer, lru and tcn.

Command: archbench run --suite lrd-cpu
Runtime: measured by its reference run (results/lrd-cpu/, 42 cells at size tiny, one
seed, compilation included; about 10 minutes on a 2-core CPU).
Results: the reference run (seed 0, on the reference machine) is committed in
results/lrd-cpu/ (summary.md: accuracy versus length, longest solved length, gradient
versus distance; the plots beside it); the manual's page docs/studies/long-range.md
shows its tables, generated from that summary, and what they show.
"""
from archbench.benchmarks.config import suite_config, task_plan


def get_config():
  # The protocol (docs/protocol.md): the same settings for every architecture and a
  # generous step budget, so the longest solved length is less a budget artefact of the
  # cells that learn late (the LRU had its own learning rate here before: at 3e-3 it had
  # not fitted adding at T=128 by step 1000; the longer budget is the same for everyone
  # instead). Validation every 100 steps records when each cell reached its target; the
  # cells train to the end all the same, because the longest solved length reads the
  # test set's solved flag, and a cell stopped at its first validation past the threshold
  # sits on it (measured: the Transformer stopped at step 100 of adding at T=32 with a
  # test MSE of 0.0113 against the threshold 0.01).
  return suite_config(
      name='lrd-cpu', doc=__doc__, size='tiny',
      archs=('rnn', 'lstm', 'gru', 'transformer', 'lru', 'tcn'),
      train=dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50,
                 eval_every=100),
      tasks={
          'adding': task_plan({'eval_size': 500}, {'steps': 2000},
                              sweep=('length', (16, 32, 64, 128)), gradient_probe_at=(128,)),
          'copy': task_plan({'eval_size': 500}, {'steps': 1500},
                            sweep=('length', (8, 32, 64)), gradient_probe_at=(64,)),
      })
