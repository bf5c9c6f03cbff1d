"""Claims about Transformers: long-range dependencies, parallel training, scalability.

Each verdict about time holds for the machine the records were measured on (the records
say which); the cpu size is sized for a 2-core CPU, where attention's parallelism has
little hardware to use.
"""
from archbench.benchmarks.claims import SEEDS, Claim, register
from archbench.benchmarks.results import claims as rules

_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50)


_COPY = {'eval_size': 500}


def _copy_steps(size: str) -> int:
  return 1000 if size == 'cpu' else 5000


def _equal_flops_lengths(size: str) -> tuple[int, ...]:
  return (64, 256) if size == 'cpu' else (64, 256, 1024)


def lstm_budget_flops(length: int, size: str) -> float:
  """The equal compute budget at copy length `length`: the training FLOPs of the LSTM's
  own step budget (analytic, runner.train_flops_per_example). Every model gets it, so the
  Transformer, whose attention costs grow as T^2, trains fewer steps where T is long."""
  from archbench import data
  from archbench.benchmarks.core import Cell
  from archbench.benchmarks.harness import runner
  params = {**data.get('copy').defaults, **_COPY, 'length': length}
  cell = Cell('lstm', 'copy', 'tiny', task_params=params)
  return runner.train_flops_per_example(cell) * _TRAIN['batch_size'] * _copy_steps(size)


def _equal_steps_lengths(size: str) -> tuple[int, ...]:
  return (16, 64, 256) if size == 'cpu' else (16, 64, 256, 1024)


def _long_range(size: str) -> list:
  from archbench.benchmarks.config import task_plan
  lengths = _equal_steps_lengths(size)
  common = {'size': 'tiny', 'seeds': SEEDS, 'archs': ('transformer', 'lstm', 'gru')}
  equal_steps = {**common, 'train': _TRAIN, 'tasks': {'copy': task_plan(
      _COPY, {'steps': _copy_steps(size)}, sweep=('length', lengths))}}
  # Equal FLOPs: one suite per length (each its own budget), every model the LSTM's FLOPs.
  equal_flops = [{**common, 'train': _TRAIN, 'tasks': {'copy': task_plan(
      {**_COPY, 'length': n}, {'steps': _copy_steps(size),
                               'budget_flops': lstm_budget_flops(n, size)})}}
                 for n in _equal_flops_lengths(size)]
  return [equal_steps, *equal_flops]


register(Claim(
    name='long-range',
    text='Transformers are extremely good at long-range dependencies',
    source='Vaswani et al. 2017, Attention is all you need, section 4 (path length O(1) '
           'between any two positions); repeated in most introductions',
    family='Transformer',
    experiment='copy memory (recall 10 symbols after T blanks), size tiny (20k parameters), '
               'Transformer against LSTM and GRU, seeds 0-2: at equal steps (1000; full: '
               '5000) at T=16, 64 and 256 (full: up to 1024), and at an equal compute budget '
               '(every model the training FLOPs of the LSTM\'s 1000 steps, so attention\'s '
               'T^2 cost buys the Transformer fewer steps) at T=64 and 256 (full: up to 1024)',
    statistic='held-out per-token accuracy',
    threshold='at every distance and budget the Transformer beats the LSTM and the GRU '
              '(paired t-tests, BH-adjusted p < 0.05, by at least 0.05 accuracy)',
    rule=lambda size: rules.compare('eval/accuracy', 'transformer', ['lstm', 'gru'], [
        *[rules.condition(f'T={n}', **{'task': 'copy', 'task.length': n,
                                       'budget.matched': 'steps'})
          for n in _equal_steps_lengths(size)],
        *[rules.condition(f'T={n}, equal FLOPs', **{'task': 'copy', 'task.length': n,
                                                   'budget.matched': 'flops'})
          for n in _equal_flops_lengths(size)]], margin=0.05),
    plans=_long_range))


# Time to target: adding at T=64 trained until validation MSE first meets the task's
# solved threshold (0.01), evaluated every 25 steps, at most 3000 steps.
TARGET_LENGTH = 64
_TO_TARGET = dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=25,
                  eval_every=25, stop_at_target=True)


def _step_lengths(size: str) -> tuple[int, ...]:
  return (64, 256, 1024) if size == 'cpu' else (64, 256, 1024, 4096)


def _parallel(size: str) -> list:
  from archbench.benchmarks.config import task_plan
  lengths = _step_lengths(size)
  common = {'size': 'small', 'seeds': SEEDS, 'archs': ('transformer', 'lstm')}
  step_time = {**common, 'train': dict(steps=4, steps_per_dispatch=1, warmup_steps=0,
                                       batch_size=8),
               'tasks': {'adding': task_plan({'eval_size': 8}, sweep=('length', lengths),
                                             sweep_probe='cost')}}
  to_target = {**common, 'train': _TO_TARGET, 'tasks': {'adding': task_plan(
      {'length': TARGET_LENGTH, 'eval_size': 500}, {'steps': 3000})}}
  return [step_time, to_target]


_TARGET = {'task': 'adding', 'task.length': TARGET_LENGTH, 'train.stop_at_target': True}

register(Claim(
    name='parallel-training',
    text='Transformers train in parallel over the sequence, which makes training much '
         'faster than an RNN\'s',
    source='Vaswani et al. 2017, section 4 ("sequential operations O(1)" against the '
           'RNN\'s O(n)); repeated in most introductions',
    family='Transformer',
    experiment='the time of one training step (median of timed windows, compilation '
               'excluded) at T=64, 256 and 1024 (full: also 4096), batch 8; and the '
               f'training time and FLOPs until adding at T={TARGET_LENGTH} is solved '
               '(validation MSE < 0.01, evaluated every 25 steps, batch 32, at most 3000 '
               'steps); size small (100k parameters), Transformer against LSTM, seeds 0-2, '
               'on the machine that ran it (the records name it)',
    statistic='training step time in ms (perf/step_ms); training seconds to target '
              '(time_to_target_s: compilation and evaluation excluded) and analytic '
              'training FLOPs to target (flops_to_target), per second and per FLOP on this '
              'machine',
    threshold='at every length the Transformer\'s step is faster than the LSTM\'s, and it '
              'reaches the target in less time and in fewer FLOPs (paired t-tests, '
              'BH-adjusted p < 0.05, by at least 1.2x)',
    rule=lambda size: rules.compare('perf/step_ms', 'transformer', ['lstm'], [
        *[rules.condition(f'step T={n}', **{'task': 'adding', 'task.length': n,
                                            'train.stop_at_target': False})
          for n in _step_lengths(size)],
        rules.condition(f'time to target T={TARGET_LENGTH}', metric='time_to_target_s',
                        higher=False, **_TARGET),
        rules.condition(f'FLOPs to target T={TARGET_LENGTH}', metric='flops_to_target',
                        higher=False, **_TARGET)], higher=False, factor=1.2),
    plans=_parallel))


def _scaling_steps(size: str) -> tuple[int, int]:
  """(fewer, the full budget): two training lengths per size, so that training FLOPs vary
  apart from parameters (each run's schedule decays over its own steps)."""
  return (300, 600) if size == 'cpu' else (1250, 5000)


def _scaling(size: str) -> list:
  from archbench.benchmarks.config import task_plan
  budgets = ('tiny', 'small') if size == 'cpu' else ('tiny', 'small', 'base', 'large')
  return [{'size': budget, 'seeds': SEEDS, 'train': _TRAIN, 'tasks': {'lm': task_plan(
      {'length': 64, 'alphabet_size': 32, 'support': 8}, {'steps': steps},
      archs=('decoder', 'lstm'))}} for budget in budgets for steps in _scaling_steps(size)]


register(Claim(
    name='scalability',
    text='Transformers replaced RNNs because they scale better',
    source='the common account since Vaswani et al. 2017; Kaplan et al. 2020, Scaling '
           'laws for neural language models, figure 7 (LSTMs plateau)',
    family='Transformer',
    experiment='character language modelling on a Markov source of known entropy rate '
               '(32 symbols, 8 allowed after each pair, T=64), a decoder Transformer and an '
               'LSTM at sizes tiny (20k) and small (100k) (full: up to large), each trained '
               '300 and 600 steps (full: 1250 and 5000), seeds 0-2',
    statistic='per seed, the slope of held-out bits per character on log2 of the '
              'parameter count (perf/params; the 600-step runs), and on log2 of the '
              'training FLOPs (perf/train_flops: analytic FLOPs per step times the steps; '
              'every run)',
    threshold='the decoder\'s slope is more negative than the LSTM\'s, against parameters '
              'and against training FLOPs: paired t-tests of the per-seed slopes, '
              'BH-adjusted p < 0.05',
    rule=lambda size: rules.trend('eval/bits_per_char', 'perf/params', ['decoder', 'lstm'], [
        rules.condition('parameters', **{'task': 'lm',
                                         'train.steps': _scaling_steps(size)[1]}),
        rules.condition('training FLOPs', x='perf/train_flops', task='lm')],
        increasing=False, log_x=True, versus=('decoder', 'lstm')),
    plans=_scaling))
