"""Long-range dependencies on a CPU: six families, adding and copy at growing lengths.

Accuracy versus length, the longest solved length and gradient-versus-distance curves
(at init and after training) for rnn, lstm, gru, transformer, lru and tcn.

Command: archbench run --suite lrd-cpu
Runtime: 8 min 21 s measured on a 2-core CPU (42 cells at size tiny, compilation
included). Reference run, tables and plots: results/lrd-cpu/.
Results (seed 0, on the reference machine): the Elman RNN's gradient decays fastest
(about e^-0.22 per step at init on adding, a horizon of 35 steps, and faster still after
training, e^-0.49) and it solves adding only at T=16; LSTM and GRU decay as fast at init
(flax's gates start half open) but learn to carry the gradient (e^-0.002 after training)
and solve adding to T=128; attention shows no decay at any distance, the LRU and the TCN
very little, and all three solve every length given, their limit being step cost
(attention's grows quadratically with T) rather than memory. On copy, which needs ten
symbols held over the whole delay, no RNN gets past the memoryless baseline in this
budget while attention, LRU and TCN solve every length.
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
