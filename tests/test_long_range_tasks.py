"""Content-dependent recall tasks (selective_copy, mqar) and permuted digits: generator
semantics recomputed in numpy, baselines, determinism, train/eval separation, and one
end-to-end harness cell per task."""
import functools
import math

import jax
import numpy as np
import pytest

from archbench import data
from archbench.data import digits, spec as spec_lib

# One configuration per task, shared by every test here (the harness cells included), so
# the generators compile for few shapes: compiling dominates these tests' time.
T, M, S = 20, 5, 6
SC = {'length': T, 'num_tokens': M, 'num_symbols': S, 'eval_size': 64}
# An odd vocabulary: keys are 0..9 and values 10..20, so the two halves differ in size.
N, Q, V = 6, 4, 21
MQ = {'num_pairs': N, 'num_queries': Q, 'vocab_size': V, 'eval_size': 64}


@functools.cache
def _task(name, seed=0, **params):
  return data.build(name, seed=seed, **params)


_jitted = {}  # id(task) -> (task, jitted train_batch); holding the task keeps its id unique


def _draw(task, key, batch_size):
  if id(task) not in _jitted:
    _jitted[id(task)] = task, jax.jit(task.train_batch, static_argnums=1)
  batch = _jitted[id(task)][1](key, batch_size)
  return {k: np.asarray(v) for k, v in batch.items()}


def _rows(a):
  return {bytes(r) for r in np.ascontiguousarray(a).astype(np.int16)}


def _answer_mask(length, start, batch_size):
  mask = np.zeros(length)
  mask[start:] = 1
  return np.broadcast_to(mask, (batch_size, length))


# ---------------------------------------------------------------------------------------
# Selective copying.

def test_selective_copy_answers_are_the_scattered_symbols_in_order():
  task = _task('selective_copy', **SC)
  assert task.spec.length == T + M and task.spec.kind == 'per_token'
  assert not task.spec.causal and task.spec.vocab_size == S + 2
  b = _draw(task, jax.random.PRNGKey(0), 512)
  x, y = b['inputs'], b['targets']
  assert x.shape == y.shape == (512, T + M)
  assert x.min() >= 0 and x.max() <= S + 1
  np.testing.assert_array_equal(x[:, T:], S + 1)  # the markers close the sequence
  assert not np.any(x[:, :T] == S + 1)
  for row_x, row_y in zip(x, y):
    # Scan the span for non-blank tokens: exactly M, hence at M distinct positions.
    where = np.flatnonzero(row_x[:T])
    assert len(where) == M
    symbols = row_x[:T][where]
    assert np.all((symbols >= 1) & (symbols <= S))
    np.testing.assert_array_equal(row_y[T:], symbols)
  np.testing.assert_array_equal(b['loss_mask'], _answer_mask(T + M, T, 512))
  np.testing.assert_array_equal(b['metric_mask'], _answer_mask(T + M, T, 512))
  # Every position of the span holds a symbol in some row, and every symbol occurs.
  assert np.all((x[:, :T] > 0).any(axis=0))
  assert set(np.unique(x[:, :T]).tolist()) == set(range(S + 1))


def test_selective_copy_has_no_fixed_offset():
  b = _draw(_task('selective_copy', **SC), jax.random.PRNGKey(1), 512)
  x, y = b['inputs'], b['targets']
  # The distance from each symbol to its answer position varies across the batch.
  offsets = np.array([[T + i - p for i, p in enumerate(np.flatnonzero(r[:T]))] for r in x])
  for i in range(M):
    assert len(np.unique(offsets[:, i])) > 5
  # Copying the input d steps back, for any fixed d, is far from solving it (copy
  # memory, by contrast, is solved exactly by d = delay + 10).
  best = max(np.mean(x[:, T - d:T + M - d] == y[:, T:]) for d in range(1, T + 1))
  assert best < 0.5


def test_selective_copy_rejects_more_tokens_than_positions():
  with pytest.raises(ValueError):
    data.build('selective_copy', length=4, num_tokens=5)


# ---------------------------------------------------------------------------------------
# Multi-query associative recall.

def test_mqar_targets_are_the_values_of_the_queried_keys():
  task = _task('mqar', **MQ)
  assert task.spec.length == 2 * N + Q and task.spec.kind == 'per_token'
  assert not task.spec.causal and task.spec.vocab_size == V
  b = _draw(task, jax.random.PRNGKey(2), 512)
  x, y = b['inputs'], b['targets']
  assert x.shape == y.shape == (512, 2 * N + Q)
  first_query_pair = []
  for row_x, row_y in zip(x, y):
    keys, values = row_x[0:2 * N:2], row_x[1:2 * N:2]
    assert len(set(keys.tolist())) == N
    assert np.all(keys < V // 2) and np.all((values >= V // 2) & (values < V))
    table = dict(zip(keys.tolist(), values.tolist()))
    queries = row_x[2 * N:]
    assert len(set(queries.tolist())) == Q  # a subset of the keys, no repeats
    assert [table[k] for k in queries.tolist()] == row_y[2 * N:].tolist()
    first_query_pair.append(keys.tolist().index(queries[0]))
  np.testing.assert_array_equal(b['loss_mask'], _answer_mask(2 * N + Q, 2 * N, 512))
  np.testing.assert_array_equal(b['metric_mask'], _answer_mask(2 * N + Q, 2 * N, 512))
  # Every key and value token is used, and the first query may ask for any pair.
  assert set(np.unique(x[:, 0:2 * N:2]).tolist()) == set(range(V // 2))
  assert set(np.unique(x[:, 1:2 * N:2]).tolist()) == set(range(V // 2, V))
  assert set(first_query_pair) == set(range(N))


@pytest.mark.parametrize('params', [{'num_queries': 5, 'num_pairs': 4},
                                    {'num_pairs': 11, 'vocab_size': 21},
                                    {'num_queries': 0}])
def test_mqar_rejects_impossible_parameters(params):
  with pytest.raises(ValueError):
    data.build('mqar', **params)


# ---------------------------------------------------------------------------------------
# Baselines: what a predictor that ignores the input reaches on the answer positions.

@pytest.mark.parametrize('name,params,support', [
    ('selective_copy', SC, range(1, S + 1)),
    ('mqar', MQ, range(V // 2, V)),
])
def test_baselines_match_a_memoryless_predictor(name, params, support):
  task = _task(name, **params)
  n = len(support)
  assert task.spec.baselines['eval/accuracy'] == pytest.approx(1 / n, rel=1e-12)
  assert task.spec.baselines['eval/loss'] == pytest.approx(math.log(n), rel=1e-12)
  assert task.spec.metric == 'eval/accuracy' and task.spec.solved == 0.95
  b = _draw(task, jax.random.PRNGKey(3), 20_000)
  mask = b['metric_mask'] > 0
  answers = b['targets'][mask]
  assert set(np.unique(answers).tolist()) == set(support)
  # A uniform random guesser over the answer symbols.
  guesses = np.random.RandomState(0).choice(np.array(support), size=answers.shape)
  assert np.mean(guesses == answers) == pytest.approx(1 / n, rel=0.05)
  # The best input-blind predictor at an answer position predicts that position's
  # marginal: its accuracy is the top frequency, its cross-entropy the entropy.
  for col in b['targets'][:, mask[0]].T:
    freq = np.bincount(col, minlength=task.spec.num_classes) / len(col)
    entropy = -np.sum(freq[freq > 0] * np.log(freq[freq > 0]))
    assert entropy == pytest.approx(task.spec.baselines['eval/loss'], rel=0.01)
    assert freq.max() == pytest.approx(task.spec.baselines['eval/accuracy'], rel=0.1)


# ---------------------------------------------------------------------------------------
# Determinism and train/eval separation.

@pytest.mark.parametrize('name,params', [('selective_copy', SC), ('mqar', MQ)])
def test_same_key_same_batch(name, params):
  task = _task(name, **params)
  a = _draw(task, jax.random.PRNGKey(1), 512)
  eager = {k: np.asarray(v) for k, v in task.train_batch(jax.random.PRNGKey(1), 512).items()}
  c = _draw(task, jax.random.PRNGKey(2), 512)
  for k in a:
    np.testing.assert_array_equal(a[k], eager[k])
  assert not np.array_equal(a['inputs'], c['inputs'])
  assert not np.array_equal(a['targets'], c['targets'])


@pytest.mark.parametrize('name,params', [('selective_copy', SC), ('mqar', MQ)])
def test_eval_set_fixed_by_seed_and_apart_from_training(name, params):
  a = _task(name, seed=4, **params)
  b = data.build(name, seed=4, **params)
  c = data.build(name, seed=5, **params)
  assert a.eval_size == 64
  for k in a.eval_data:
    assert isinstance(a.eval_data[k], np.ndarray)
    np.testing.assert_array_equal(a.eval_data[k], b.eval_data[k])
  assert not np.array_equal(a.eval_data['inputs'], c.eval_data['inputs'])
  # selective_copy has C(20, 5) * 6**5 ~ 1.2e8 equally likely sequences, mqar ~ 1e14: an
  # accidental repeat among 64 x 1536 pairs has probability < 1e-3, while a shared
  # train/eval stream (the bug this catches) would repeat the whole eval set.
  eval_rows = _rows(a.eval_data['inputs'])
  assert len(eval_rows) == 64
  train = _draw(a, spec_lib.train_key(4), 1024)['inputs']
  assert not eval_rows & _rows(train)
  # The harness folds the chunk index into train_key: check the first chunk too.
  chunk = _draw(a, jax.random.fold_in(spec_lib.train_key(4), 0), 512)['inputs']
  assert not eval_rows & _rows(chunk)


# ---------------------------------------------------------------------------------------
# Permuted digits.

def test_pdigits_is_a_fixed_pixel_permutation_of_digits():
  plain, permuted = data.build('digits'), _task('pdigits')
  assert permuted.spec.image_shape == (8, 8, 1) and permuted.spec.kind == 'classify'
  assert permuted.spec.baselines == plain.spec.baselines
  x, px = plain.eval_data['inputs'], permuted.eval_data['inputs']
  assert px.shape == x.shape
  np.testing.assert_array_equal(permuted.eval_data['targets'], plain.eval_data['targets'])
  flat, pflat = x.reshape(len(x), 64), px.reshape(len(px), 64)
  # Same multiset of pixel values per image, but not the same images.
  np.testing.assert_array_equal(np.sort(flat, axis=1), np.sort(pflat, axis=1))
  assert not np.array_equal(flat, pflat)
  # One permutation for all images: each permuted pixel column is some original column,
  # and most columns differ from the identity's.
  columns = {bytes(c) for c in flat.T}
  assert all(bytes(c) in columns for c in pflat.T)
  assert np.sum(np.any(flat != pflat, axis=0)) > 40
  np.testing.assert_array_equal(pflat, flat[:, np.random.RandomState(0).permutation(64)])


def test_pdigits_fixed_by_permutation_seed_not_run_seed():
  a = _task('pdigits').eval_data['inputs']
  b = data.build('pdigits', seed=9).eval_data['inputs']
  c = data.build('pdigits', permutation_seed=1).eval_data['inputs']
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  np.testing.assert_array_equal(np.sort(a.reshape(len(a), -1), 1),
                                np.sort(c.reshape(len(c), -1), 1))


def test_pdigits_split_is_digits_split_and_disjoint():
  images, labels = digits.load_digits_arrays()
  train, test = digits.split_indices(len(labels), 0.2, 0)
  task = _task('pdigits')
  permuted = images.reshape(len(images), 64)[:, digits.pixel_permutation(0)]
  np.testing.assert_array_equal(task.eval_data['inputs'].reshape(len(test), 64), permuted[test])
  train_rows = {bytes(r) for r in permuted[train]}
  assert not train_rows & {bytes(r) for r in permuted[test]}
  drawn = _draw(task, jax.random.PRNGKey(0), 512)
  assert drawn['inputs'].shape == (512, 8, 8, 1)
  drawn_rows = [bytes(r) for r in drawn['inputs'].reshape(512, 64)]
  assert all(r in train_rows for r in drawn_rows)
  # The labels travel with their images.
  label_of = {bytes(r): l for r, l in zip(permuted[train], labels[train])}
  assert [label_of[r] for r in drawn_rows] == drawn['targets'].tolist()


# ---------------------------------------------------------------------------------------
# End to end through the harness.

@pytest.mark.parametrize('task,params', [('selective_copy', SC), ('mqar', MQ), ('pdigits', {})])
def test_harness_cell(task, params):
  from archbench.benchmarks.harness import runner
  from archbench.benchmarks.core import Cell, TrainConfig
  out = {}
  cell = Cell('transformer', task, 'tiny', 0, params, {}, TrainConfig(
      steps=10, batch_size=8, steps_per_dispatch=5, eval_batch_size=64), fast_compile=True)
  runner.measure_cell(cell, out)
  assert math.isfinite(out['metrics']['eval/accuracy'])
  assert 0.0 <= out['metrics']['eval/accuracy'] <= 1.0
  assert math.isfinite(out['metrics']['eval/loss'])
  assert 'baseline/eval/accuracy' in out['metrics']
  assert params.items() <= out['config']['task'].items()
