"""Claims about Transformers: long-range dependencies, parallel training, scalability.

Each verdict about time holds for the machine the records were measured on (the records
say which); the cpu size is sized for a 2-core CPU, where attention's parallelism has
little hardware to use.
"""
from archbench.benchmarks.claims import Claim, register
from archbench.benchmarks.results import claims as rules

SEEDS = (0, 1, 2)
_TRAIN = dict(batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50)


def _long_range(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  lengths = (16, 64) if size == 'cpu' else (16, 64, 256, 1024)
  return {'size': 'tiny', 'seeds': SEEDS, 'train': _TRAIN,
          'archs': ('transformer', 'lstm', 'gru'),
          'tasks': {'copy': task_plan({'eval_size': 500},
                                      {'steps': 1000 if size == 'cpu' else 5000},
                                      sweep=('length', lengths))}}


register(Claim(
    name='long-range',
    text='Transformers are extremely good at long-range dependencies',
    source='Vaswani et al. 2017, Attention is all you need, section 4 (path length O(1) '
           'between any two positions); repeated in most introductions',
    family='Transformer',
    experiment='copy memory (recall 10 symbols after T blanks) at T=16 and 64 (full: up to '
               '1024), size tiny (20k parameters), 1000 steps (full: 5000), Transformer '
               'against LSTM and GRU, seeds 0-2',
    statistic='held-out per-token accuracy',
    threshold='at every distance the Transformer beats the LSTM and the GRU (paired '
              't-tests, BH-adjusted p < 0.05, by at least 0.05 accuracy)',
    rule=rules.compare('eval/accuracy', 'transformer', ['lstm', 'gru'], [
        rules.condition('T=16', **{'task': 'copy', 'task.length': 16}),
        rules.condition('T=64', **{'task': 'copy', 'task.length': 64})], margin=0.05),
    plans=_long_range))


def _parallel(size: str) -> dict:
  from archbench.benchmarks.config import task_plan
  lengths = (64, 256, 1024) if size == 'cpu' else (64, 256, 1024, 4096)
  return {'size': 'small', 'seeds': SEEDS, 'archs': ('transformer', 'lstm'),
          'train': dict(steps=4, steps_per_dispatch=1, warmup_steps=0, batch_size=8),
          'tasks': {'adding': task_plan({'eval_size': 8}, sweep=('length', lengths),
                                        sweep_probe='cost')}}


def _lengths(size: str) -> list:
  return [rules.condition(f'T={n}', **{'task': 'adding', 'task.length': n})
          for n in (64, 256, 1024)]


register(Claim(
    name='parallel-training',
    text='Transformers train in parallel over the sequence, which makes training much '
         'faster than an RNN\'s',
    source='Vaswani et al. 2017, section 4 ("sequential operations O(1)" against the '
           'RNN\'s O(n)); repeated in most introductions',
    family='Transformer',
    experiment='the time of one training step (median of timed windows, compilation '
               'excluded) at T=64, 256 and 1024 (full: also 4096), batch 8, size small '
               '(100k parameters), Transformer against LSTM, seeds 0-2, on the machine '
               'that ran it (the records name it)',
    statistic='training step time in ms (perf/step_ms), per second on this machine',
    threshold='at every length the Transformer\'s step is faster than the LSTM\'s (paired '
              't-tests, BH-adjusted p < 0.05, by at least 1.2x)',
    rule=rules.compare('perf/step_ms', 'transformer', ['lstm'], [
        rules.condition(f'T={n}', **{'task': 'adding', 'task.length': n})
        for n in (64, 256, 1024)], higher=False, factor=1.2),
    plans=_parallel))


def _scaling(size: str) -> list:
  from archbench.benchmarks.config import task_plan
  budgets = ('tiny', 'small') if size == 'cpu' else ('tiny', 'small', 'base', 'large')
  plan = task_plan({'length': 64, 'alphabet_size': 32, 'support': 8},
                   {'steps': 600 if size == 'cpu' else 5000}, archs=('decoder', 'lstm'))
  return [{'size': budget, 'seeds': SEEDS, 'train': _TRAIN, 'tasks': {'lm': plan}}
          for budget in budgets]


register(Claim(
    name='scalability',
    text='Transformers replaced RNNs because they scale better',
    source='the common account since Vaswani et al. 2017; Kaplan et al. 2020, Scaling '
           'laws for neural language models, figure 7 (LSTMs plateau)',
    family='Transformer',
    experiment='character language modelling on a Markov source of known entropy rate '
               '(32 symbols, 8 allowed after each pair, T=64), a decoder Transformer and an '
               'LSTM at sizes tiny (20k) and small (100k) (full: up to large), 600 steps '
               '(full: 5000), seeds 0-2',
    statistic='per seed, the slope of held-out bits per character on log2 of the '
              'parameter count (perf/params)',
    threshold='the decoder\'s slope is more negative than the LSTM\'s: paired t-test of '
              'the per-seed slopes, p < 0.05',
    rule=rules.trend('eval/bits_per_char', 'perf/params', ['decoder', 'lstm'],
                     [rules.condition('lm', task='lm')], increasing=False, log_x=True,
                     versus=('decoder', 'lstm')),
    plans=_scaling))
