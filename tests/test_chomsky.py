"""The Chomsky-hierarchy tasks (data/chomsky.py): every label against an independent
pure-Python reference of the paper's task, the layout and masks (which positions count),
the lengths drawn, determinism, train/eval separation, the constant-predictor baselines,
and one end-to-end harness cell."""
import collections
import math

import jax
import numpy as np
import pytest

from archbench import data
from archbench.data import spec as spec_lib

# One small configuration per task (lengths 1..24, short-string edge cases included) and a
# few long fixed-length ones (carries, stacks and products far past 64 bits), shared by all
# tests so that each generator compiles for few shapes.
MIXED = {'length': 24, 'min_length': 1, 'eval_size': 300}
FIXED = {'binary_addition': 100, 'stack_manipulation': 100, 'modular_arithmetic': 100,
         'duplicate_string': 41}


def _task(name, params=MIXED, seed=0):
  return data.build(name, seed=seed, **params)


def _fixed(name):
  length = FIXED[name]
  return {'length': length, 'min_length': length, 'eval_size': 64}


# ---------------------------------------------------------------------------------------
# References: the paper's tasks on Python lists of the paper's token ids.

def _value(bits):
  """A little-endian bit list as an int (Python's integers never overflow)."""
  return int(''.join(str(b) for b in reversed(bits)), 2)


def _little_endian(value):
  return [int(c) for c in reversed(format(value, 'b'))]  # 0 -> [0]


def parity_check(s):
  return [s.count(1) % 2]


def even_pairs(s):
  return [sum(1 for x, y in zip(s, s[1:]) if (x, y) in ((0, 1), (1, 0))) % 2]


def modular_arithmetic(s):
  assert len(s) % 2 == 1
  assert all(x in range(5) for x in s[0::2]) and all(x in (5, 6, 7) for x in s[1::2])
  expression = ''.join(str(x) if i % 2 == 0 else '+-*'[x - 5] for i, x in enumerate(s))
  return [eval(expression) % 5]  # Python's precedence and exact integers


def cycle_navigation(s):
  position = 0
  for move in s:
    position = (position + {0: -1, 1: 0, 2: 1}[move]) % 5
  return [position]


def reverse_string(s):
  return s[::-1]


def duplicate_string(s):
  return s + s


def stack_manipulation(s):
  k = 0
  while k < len(s) and s[k] in (0, 1):
    k += 1
  assert 1 <= k <= max(1, len(s) - 1), 'a stack of 1..n-1 bits, then actions'
  stack = list(s[:k])
  for action in s[k:]:
    assert action in (2, 3, 4)
    if action == 2:
      if stack:
        stack.pop()
    else:
      stack.append(action - 3)
  result = stack[::-1] + [2]
  return result + [0] * (len(s) + 1 - len(result))


def binary_addition(s):
  n = len(s)
  if n <= 2:  # a single number below 2^n - 1, as in the paper
    assert 2 not in s and _value(s) <= 2**n - 2
    total = _value(s)
  else:
    plus = s.index(2)
    a, b = s[:plus], s[plus + 1:]
    assert 2 not in b and a and b, 'two numbers around one +'
    assert _value(a) > 0 and _value(b) > 0
    total = _value(a) + _value(b)
  result = _little_endian(total) + [2]
  return result + [0] * (n + 1 - len(result))


REFERENCES = {f.__name__: f for f in (parity_check, even_pairs, modular_arithmetic,
                                      cycle_navigation, reverse_string, stack_manipulation,
                                      duplicate_string, binary_addition)}
NAMES = list(REFERENCES)
# The paper's sizes: input alphabet A (QUERY = A, PAD = A + 1), output classes K, and the
# output length for an input of n tokens.
SIZES = {'parity_check': (2, 2, lambda n: 1), 'even_pairs': (2, 2, lambda n: 1),
         'modular_arithmetic': (9, 5, lambda n: 1), 'cycle_navigation': (3, 5, lambda n: 1),
         'reverse_string': (2, 2, lambda n: n), 'stack_manipulation': (5, 3, lambda n: n + 1),
         'duplicate_string': (2, 2, lambda n: 2 * n), 'binary_addition': (3, 3, lambda n: n + 1)}
TERMINATED = {'stack_manipulation', 'binary_addition'}  # scored up to the terminator 2


def _check_examples(name, batch):
  """Every example against the reference; returns the input lengths and the scored targets."""
  size, classes, out = SIZES[name]
  query, pad = size, size + 1
  lengths, scored = [], []
  for x, y, lm, mm in zip(batch['inputs'], batch['targets'], batch['loss_mask'],
                          batch['metric_mask']):
    x, y = x.tolist(), y.tolist()
    n = x.index(query)
    m = out(n)
    s = x[:n]
    assert all(0 <= v < size for v in s)
    assert x[n:n + m] == [query] * m and set(x[n + m:]) <= {pad}
    expected = REFERENCES[name](s)
    assert y[n:n + m] == expected, (name, s)
    assert y[:n] == [0] * n and set(y[n + m:]) <= {0}
    counted = m if name not in TERMINATED else expected.index(2) + 1
    np.testing.assert_array_equal(np.flatnonzero(lm), np.arange(n, n + m))
    np.testing.assert_array_equal(np.flatnonzero(mm), np.arange(n, n + counted))
    lengths.append(n)
    scored += expected[:counted]
  return np.array(lengths), scored


# ---------------------------------------------------------------------------------------
# Labels, layout and masks.

@pytest.mark.parametrize('name', NAMES)
def test_labels_and_masks_match_the_reference(name):
  task = _task(name)
  size, classes, out = SIZES[name]
  spec = task.spec
  assert spec.kind == 'per_token' and not spec.causal and spec.metric == 'eval/accuracy'
  assert spec.vocab_size == size + 2 and spec.num_classes == classes
  assert spec.length == 24 + out(24) and task.eval_data['inputs'].shape == (300, spec.length)
  assert task.params == MIXED
  lengths, _ = _check_examples(name, task.eval_data)
  # Lengths uniform in [min_length, length], both ends drawn (modular arithmetic: odd).
  odd = name == 'modular_arithmetic'
  expected = set(range(1, 25, 2 if odd else 1))
  assert set(lengths.tolist()) == expected
  counts = np.bincount(lengths, minlength=25)[sorted(expected)]
  assert counts.min() > 0.4 * counts.mean()


@pytest.mark.parametrize('name', sorted(FIXED))
def test_fixed_length_gives_the_accuracy_at_that_length(name):
  """min_length = length = L: every string has length L (L - 1 for modular arithmetic at
  even L, as in the paper), far beyond 64-bit numbers for binary addition."""
  task = _task(name, _fixed(name))
  lengths, _ = _check_examples(name, task.eval_data)
  length = FIXED[name]
  assert set(lengths.tolist()) == {length - (name == 'modular_arithmetic' and length % 2 == 0)}


def test_generators_cover_the_papers_sampling():
  """The parts the paper samples take all their values."""
  ops, digits = collections.Counter(), collections.Counter()
  for x in _task('modular_arithmetic').eval_data['inputs']:
    s = x[:x.tolist().index(9)]
    ops.update(s[1::2].tolist())
    digits.update(s[0::2].tolist())
  assert set(ops) == {5, 6, 7} and set(digits) == set(range(5))
  # Binary addition: the first number takes 1..n-2 bits (both ends drawn at n = 100).
  split = [x.tolist().index(2) for x in _task('binary_addition', _fixed('binary_addition'))
           .eval_data['inputs']]
  assert min(split) < 10 and max(split) > 88
  # Stack manipulation: the initial stack takes 1..n-1 bits (both ends drawn), and the
  # actions sometimes empty it.
  ends, empties = set(), 0
  for x, y in zip(*(_task('stack_manipulation').eval_data[k] for k in ('inputs', 'targets'))):
    x = x.tolist()
    n = x.index(5)
    k = next(i for i, v in enumerate(x[:n] + [2]) if v > 1)
    ends |= {'one'} if k == 1 and n > 3 else {'all but one'} if k == n - 1 and n > 3 else set()
    empties += y[n] == 2
  assert ends == {'one', 'all but one'} and empties > 0


# ---------------------------------------------------------------------------------------
# Baselines: what an input-blind predictor scores on the held-out set.

# Where the constant predictor's accuracy should lie: at the paper's random accuracy (50%;
# 20% for the 5-class tasks), a little above it where short strings skew the labels (a
# single symbol has no unequal pair; products favour 0; a 1-move walk ends in 4, 0 or 1),
# and between 1/3 and 1/2 or so for the 3-class outputs (bits, then one terminator).
CHANCE = {'parity_check': (0.5, 0.6), 'even_pairs': (0.5, 0.62),
          'modular_arithmetic': (0.2, 0.32), 'cycle_navigation': (0.2, 0.32),
          'reverse_string': (0.5, 0.54), 'duplicate_string': (0.5, 0.54),
          'stack_manipulation': (1 / 3, 0.6), 'binary_addition': (1 / 3, 0.6)}


@pytest.mark.parametrize('name', NAMES)
def test_baselines_are_the_best_constant_predictor(name):
  task = _task(name)
  _, scored = _check_examples(name, task.eval_data)
  majority = collections.Counter(scored).most_common(1)[0][1] / len(scored)
  assert task.spec.baselines['eval/accuracy'] == pytest.approx(majority, abs=1e-12)
  low, high = CHANCE[name]
  assert low <= majority <= high
  # The best constant distribution's cross-entropy over the loss positions is the entropy.
  losses = task.eval_data['targets'][task.eval_data['loss_mask'] > 0].tolist()
  freq = np.array(list(collections.Counter(losses).values())) / len(losses)
  assert task.spec.baselines['eval/loss'] == pytest.approx(-np.sum(freq * np.log(freq)))
  # A uniform guess over the K classes.
  classes = SIZES[name][1]
  assert task.spec.baselines['chance/accuracy'] == 1 / classes
  guesses = np.random.RandomState(0).randint(0, classes, 20 * len(scored))
  assert np.mean(guesses == np.tile(scored, 20)) == pytest.approx(1 / classes, abs=0.03)
  assert task.spec.solved == 0.9 and task.spec.is_solved(0.9)


# ---------------------------------------------------------------------------------------
# Determinism and train/eval separation.

def _draw(task, key):
  """A training batch as numpy, at the held-out set's batch size (the same compiled
  generator)."""
  return {k: np.asarray(v) for k, v in task.train_batch(key, task.eval_size).items()}


@pytest.mark.parametrize('name', NAMES)
def test_same_seed_same_batch_and_eval_apart_from_training(name):
  task = _task(name, seed=4)
  a, b = _draw(task, jax.random.PRNGKey(1)), _draw(task, jax.random.PRNGKey(1))
  c = _draw(task, jax.random.PRNGKey(2))
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a['inputs'], c['inputs'])
  again, other = _task(name, seed=4), _task(name, seed=5)
  for k in task.eval_data:
    np.testing.assert_array_equal(task.eval_data[k], again.eval_data[k])
  assert not np.array_equal(task.eval_data['inputs'], other.eval_data['inputs'])
  # The held-out set is the eval stream, not a training draw of the same seed.
  train = _draw(task, spec_lib.train_key(4))
  assert not np.array_equal(train['inputs'], task.eval_data['inputs'])
  np.testing.assert_array_equal(
      _draw(task, spec_lib.eval_key(4))['inputs'], task.eval_data['inputs'])


def test_rejects_bad_lengths():
  with pytest.raises(ValueError):
    data.build('parity_check', length=4, min_length=5)
  with pytest.raises(ValueError):
    data.build('parity_check', min_length=0)


# ---------------------------------------------------------------------------------------
# End to end through the harness.

def test_harness_cell():
  from archbench.benchmarks.harness import runner
  from archbench.benchmarks.core import Cell, TrainConfig
  out = {}
  cell = Cell('gru', 'binary_addition', 'tiny', 0, MIXED, {}, TrainConfig(
      steps=10, batch_size=8, steps_per_dispatch=5, eval_batch_size=100), fast_compile=True)
  runner.measure_cell(cell, out)
  assert 0.0 <= out['metrics']['eval/accuracy'] <= 1.0
  assert math.isfinite(out['metrics']['eval/loss'])
  assert out['metrics']['baseline/eval/accuracy'] == pytest.approx(
      _task('binary_addition').spec.baselines['eval/accuracy'])
