"""Claims about recurrent networks: vanishing gradients, gates, sequences in general.

The cpu size runs the adding problem at size tiny (20k parameters), three seeds, the
same settings for every architecture (lrd-cpu's), fixed step budgets.
"""
from archbench.benchmarks.claims import SEEDS, Claim, register, side_by_side
from archbench.benchmarks.results import claims as rules

_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50)
_FAMILIES = ('rnn', 'lstm', 'gru', 'transformer', 'lru', 'tcn')
# The gated RNNs beside a Transformer and a convolution, for the use-case claims.
_SEQUENCE_FAMILIES = ('lstm', 'gru', 'transformer', 'tcn')


def _gradient_length(size: str) -> int:
  return 64 if size == 'cpu' else 512


def _gradients(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  length = _gradient_length(size)
  return {'size': 'tiny', 'seeds': SEEDS, 'train': _TRAIN, 'archs': _FAMILIES,
          'tasks': {'adding': task_plan({'eval_size': 500},
                                        {'steps': 1000 if size == 'cpu' else 5000},
                                        sweep=('length', (length,)),
                                        gradient_probe_at=(length,))}}


register(Claim(
    name='vanishing-gradients',
    text='RNNs are hard to train on long sequences because their gradients vanish',
    source='Bengio, Simard & Frasconi 1994, Learning long-term dependencies with gradient '
           'descent is difficult; Pascanu, Mikolov & Bengio 2013',
    family='RNN',
    experiment='adding problem at T=64 (full: 512), size tiny (20k parameters), 1000 '
               'steps (full: 5000): the gradient of the readout with respect to the input k '
               'steps back, after training, for the Elman RNN, LSTM, GRU, Transformer, LRU '
               'and TCN, seeds 0-2 (at initialisation the gated cells decay as fast as the '
               'Elman RNN or faster: results/lrd-cpu; what differs is what training makes '
               'of it)',
    statistic='the fitted exponential decay rate of the gradient norm per step after '
              'training (lrd/rate_trained; more negative: faster vanishing)',
    threshold='the Elman RNN\'s rate is below (decays faster than) each other family\'s: '
              'paired t-tests, BH-adjusted p < 0.05',
    rule=lambda size: rules.compare(
        'lrd/rate_trained', 'rnn', ['lstm', 'gru', 'transformer', 'lru', 'tcn'],
        [rules.condition(f'adding T={_gradient_length(size)}, trained', task='adding')],
        higher=False),
    plans=_gradients))


def _gate_lengths(size: str) -> tuple[int, ...]:
  return (32, 128) if size == 'cpu' else (32, 128, 512)


def _gates(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  lengths = _gate_lengths(size)
  return {'size': 'tiny', 'seeds': SEEDS, 'train': _TRAIN, 'archs': ('rnn', 'lstm', 'gru'),
          'tasks': {'adding': task_plan({'eval_size': 500},
                                        {'steps': 1000 if size == 'cpu' else 4000},
                                        sweep=('length', lengths))}}


register(Claim(
    name='gates',
    text='LSTM and GRU gates fix the Elman RNN\'s trouble with long sequences',
    source='Hochreiter & Schmidhuber 1997 (LSTM); Cho et al. 2014 (GRU); the common '
           'account of why gated RNNs replaced Elman networks',
    family='RNN',
    experiment='adding problem at T=32 and 128 (full: also 512), size tiny (20k '
               'parameters), 1000 steps (full: 4000), Elman RNN, LSTM and GRU, seeds 0-2',
    statistic='held-out MSE (the baseline, predicting the mean, scores 0.167)',
    threshold='at every length the LSTM and the GRU each beat the Elman RNN (paired '
              't-tests, BH-adjusted p < 0.05, MSE lower by at least 2x)',
    rule=lambda size: rules.compare('eval/mse', ['lstm', 'gru'], ['rnn'], [
        rules.condition(f'T={n}', **{'task': 'adding', 'task.length': n})
        for n in _gate_lengths(size)], factor=2.0),
    plans=_gates))


register(Claim(
    name='time-series',
    text='RNNs suit time-dependent data such as time series',
    source='the common account of RNNs (e.g. the Keras and TensorFlow time-series '
           'tutorials, which forecast with an LSTM)',
    family='RNN',
    experiment='Mackey-Glass chaotic series (tau=17, noise 0.02), forecast the next 8 '
               'values from the last 32; LSTM and GRU beside a Transformer and a TCN, size '
               'small, 300 steps (full: 3000), seeds 0-2',
    statistic='held-out MSE against the linear autoregression fitted on the training '
              'windows (baseline/linear_ar/mse; persistence scores about 0.48)',
    threshold='the LSTM and the GRU each beat the linear AR: paired t-test over seeds, '
              'BH-adjusted p < 0.05',
    rule=rules.beats_baseline('eval/mse', ['lstm', 'gru'], 'linear_ar',
                              [rules.condition('Mackey-Glass', task='forecast')],
                              quantifier='all'),
    plans=side_by_side('forecast', _SEQUENCE_FAMILIES, (300, 3000),
                       train={**_TRAIN, 'warmup_steps': 30},
                       params={'length': 32, 'horizon': 8})))


register(Claim(
    name='stock-prices',
    text='RNNs can predict stock prices',
    source='a staple of tutorials and blog posts ("predict stock prices with an LSTM")',
    family='RNN',
    experiment='a random walk (geometric Brownian motion, the textbook model of a price), '
               'forecast from a window of past log prices; LSTM, GRU, Transformer and TCN '
               'against persistence (tomorrow = today), which is optimal for a random walk',
    statistic='held-out MSE against persistence (baseline/persistence/mse)',
    threshold='any model beats persistence: paired t-test over seeds, BH-adjusted p < 0.05 '
              '(for a true random walk none can: the verdict must read fails)',
    rule=rules.beats_baseline('eval/mse', ['lstm', 'gru', 'transformer', 'tcn'],
                              'persistence',
                              [rules.condition('random walk', task='random_walk')]),
    plans=side_by_side('random_walk', _SEQUENCE_FAMILIES, (300, 3000),
                       train={**_TRAIN, 'warmup_steps': 30}),
    needs=('random_walk',)))


register(Claim(
    name='speech',
    text='RNNs suit speech',
    source='the common account of RNNs (Graves, Mohamed & Hinton 2013, Speech recognition '
           'with deep recurrent neural networks)',
    family='RNN',
    experiment='spoken digits: LSTM and GRU beside a Transformer and a TCN at equal '
               'parameters (size small), 600 steps (full: 3000), seeds 0-2',
    statistic='held-out accuracy',
    threshold='the Transformer does not beat the LSTM by 2 points of accuracy or more '
              '(paired t-test, BH-adjusted p < 0.05)',
    rule=rules.compare('eval/accuracy', 'transformer', ['lstm'],
                       [rules.condition('spoken digits', expect=False,
                                        task='spoken_digits')], margin=0.02),
    plans=side_by_side('spoken_digits', _SEQUENCE_FAMILIES, (600, 3000), train=_TRAIN),
    needs=('spoken_digits',)))
