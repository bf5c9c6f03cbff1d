"""The task zoo's offline tasks: ListOps (labels against an independent evaluator, limits,
cache, split); one end-to-end harness cell per task."""
import math
import os

import jax
import numpy as np
import pytest

import data
from benchmarks import train as train_lib
from data import cache, listops

# One configuration per task, shared by the tests (the harness cells included), so that
# generators and models compile for few shapes.
LO = {'max_depth': 4, 'max_args': 5, 'min_length': 16, 'max_length': 48,
      'num_examples': 600, 'test_fraction': 0.2}


@pytest.fixture(autouse=True, scope='module')
def _cache_dir(tmp_path_factory):
  """A private on-disk cache, so the tests neither read stale datasets nor fill ~/.cache."""
  old = os.environ.get(cache.CACHE_ENV)
  os.environ[cache.CACHE_ENV] = str(tmp_path_factory.mktemp('archbench-cache'))
  yield
  if old is None:
    del os.environ[cache.CACHE_ENV]
  else:
    os.environ[cache.CACHE_ENV] = old


_jitted = {}  # id(task) -> (task, jitted train_batch); holding the task keeps its id unique


def _draw(task, key, batch_size):
  if id(task) not in _jitted:
    _jitted[id(task)] = task, jax.jit(task.train_batch, static_argnums=1)
  return {k: np.asarray(v) for k, v in _jitted[id(task)][1](key, batch_size).items()}


def _rows(a):
  return {bytes(r) for r in np.ascontiguousarray(a)}


# ---------------------------------------------------------------------------------------
# ListOps.

# The vocabulary, written out here rather than read from the module.
NAMES = ['<pad>', *'0123456789', '[MIN', '[MAX', '[MED', '[SM', ']']


def _evaluate(words):
  """Recursive descent over the token strings, with LRA's semantics (to_value in
  lra_benchmarks/data/listops.py): MED is int(np.median), SM is the sum mod 10.
  Returns (value, tree depth counting the leaf level, [(operator, argument count)])."""
  pos, operators = 0, []

  def expr():
    nonlocal pos
    word = words[pos]
    pos += 1
    if word.isdigit():
      return int(word), 1
    assert word.startswith('['), word
    args, depth = [], 0
    while words[pos] != ']':
      value, d = expr()
      args.append(value)
      depth = max(depth, d)
    pos += 1  # the ]
    operators.append((word, len(args)))
    value = {'[MIN': min, '[MAX': max, '[MED': lambda a: int(np.median(a)),
             '[SM': lambda a: int(np.sum(a)) % 10}[word](args)
    return value, depth + 1

  value, depth = expr()
  assert pos == len(words), 'trailing tokens after a complete expression'
  return value, depth, operators


def _listops_pool(task):
  """The held-out expressions and 2048 drawn for training: (tokens, labels)."""
  drawn = _draw(task, jax.random.PRNGKey(0), 2048)
  return (np.concatenate([task.eval_data['inputs'], drawn['inputs']]),
          np.concatenate([task.eval_data['targets'], drawn['targets']]))


def test_listops_labels_match_an_independent_evaluator():
  task = data.build('listops', **LO)
  assert list(listops.TOKENS) == NAMES and task.spec.vocab_size == len(NAMES)
  assert task.spec.kind == 'classify' and task.spec.num_classes == 10
  assert task.spec.length == LO['max_length']
  x, y = _listops_pool(task)
  assert x.shape[1] == LO['max_length'] and x.dtype == np.int32
  depths, lengths, operators = [], [], []
  for row, label in zip(x, y):
    n = int(np.count_nonzero(row))
    assert np.all(row[:n] != 0) and np.all(row[n:] == 0)  # padding only at the end
    words = [NAMES[t] for t in row[:n]]
    assert ']' in words and words.count(']') == sum(w.startswith('[') for w in words)
    value, depth, ops = _evaluate(words)
    assert value == label, ' '.join(words)
    assert depth <= LO['max_depth']
    assert all(2 <= count <= LO['max_args'] for _, count in ops)
    assert LO['min_length'] <= n <= LO['max_length']
    depths.append(depth)
    lengths.append(n)
    operators += ops
  # The limits are reached, not just respected, and every operator and label occurs.
  assert max(depths) == LO['max_depth']
  assert min(lengths) <= LO['min_length'] + 4 and max(lengths) >= LO['max_length'] - 4
  assert {op for op, _ in operators} == {'[MIN', '[MAX', '[MED', '[SM'}
  assert {count for _, count in operators} == set(range(2, LO['max_args'] + 1))
  assert set(y.tolist()) == set(range(10))
  assert sum(op == '[MED' and count % 2 == 0 for op, count in operators) > 50  # even medians


@pytest.mark.parametrize('args', [[1, 2], [1, 4], [3, 4, 8, 9], [0, 9], [7, 2, 2, 7, 5, 1]])
def test_listops_median_is_lra_int_of_np_median(args):
  assert listops.apply_operator('[MED', args) == int(np.median(args))


def test_listops_split_is_fixed_disjoint_and_seeded():
  task = data.build('listops', **LO)
  test_rows = _rows(task.eval_data['inputs'])
  assert len(test_rows) == task.eval_size == 120
  train_rows = _rows(_draw(task, jax.random.PRNGKey(1), 8192)['inputs'])
  assert not test_rows & train_rows
  assert len(train_rows | test_rows) == LO['num_examples']  # every expression distinct
  # The run's seed changes nothing; split_seed reshuffles the same pool; data_seed
  # generates other expressions.
  same = data.build('listops', seed=7, **LO)
  np.testing.assert_array_equal(same.eval_data['inputs'], task.eval_data['inputs'])
  resplit = data.build('listops', split_seed=1, **LO)
  assert _rows(resplit.eval_data['inputs']) != test_rows
  assert len(_rows(resplit.eval_data['inputs']) & (train_rows | test_rows)) == 120
  other = data.build('listops', data_seed=1, **LO)
  assert len(_rows(other.eval_data['inputs']) & (train_rows | test_rows)) < 12


def test_listops_baselines_are_the_input_blind_classifier():
  task = data.build('listops', **LO)
  y_test = task.eval_data['targets']
  counts = np.bincount(y_test, minlength=10)
  assert task.spec.baselines['eval/accuracy'] == pytest.approx(counts.max() / len(y_test))
  y_train = _draw(task, jax.random.PRNGKey(2), 50_000)['targets']  # ~ the train frequencies
  prior = np.bincount(y_train, minlength=10) / len(y_train)
  assert task.spec.baselines['eval/loss'] == pytest.approx(
      -np.mean(np.log(prior[y_test])), rel=0.02)
  assert task.spec.metric == 'eval/accuracy' and task.spec.solved == 0.95


def test_listops_cache_hit_returns_the_same_arrays(monkeypatch, tmp_path):
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
  params = {**LO, 'data_seed': 5}
  first = data.build('listops', **params)
  files = list(tmp_path.glob('listops-*.npz'))
  assert len(files) == 1
  # A hit must not generate: make generation fail, then build again.
  def fail(**_):
    raise AssertionError('generated despite a cached copy')
  monkeypatch.setattr(listops, 'generate', fail)
  again = data.build('listops', **params)
  for k in first.eval_data:
    np.testing.assert_array_equal(first.eval_data[k], again.eval_data[k])
  assert first.spec.baselines == again.spec.baselines
  with pytest.raises(AssertionError, match='generated'):  # another config is a miss
    data.build('listops', **{**params, 'max_args': 4})
  # A corrupt file is rebuilt, not trusted.
  monkeypatch.undo()
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
  files[0].write_bytes(b'not an npz')
  rebuilt = data.build('listops', **params)
  np.testing.assert_array_equal(rebuilt.eval_data['inputs'], first.eval_data['inputs'])


def test_listops_rejects_impossible_requests():
  with pytest.raises(ValueError):
    data.build('listops', min_length=100, max_length=50)
  # Only 4 operators x 10 x 10 expressions of 4 tokens exist.
  with pytest.raises(ValueError, match='distinct'):
    data.build('listops', max_depth=2, max_args=2, min_length=4, max_length=4,
               num_examples=401)


# ---------------------------------------------------------------------------------------
# End to end through the harness.

@pytest.mark.parametrize('task,params,keys', [
    ('listops', LO, ['eval/accuracy', 'baseline/eval/accuracy', 'baseline/eval/loss']),
])
def test_harness_cell(task, params, keys):
  from benchmarks import runner
  cell = runner.Cell('transformer', task, 'tiny', 0, params, {}, train_lib.TrainConfig(
      steps=10, batch_size=8, steps_per_dispatch=5, eval_batch_size=64), fast_compile=True)
  record = runner.run_cell(cell, suite='test', run_id='test', env={})
  assert record['status'] == 'ok', record['error']
  metrics = record['metrics']
  for key in keys:
    assert math.isfinite(metrics[key]), key
  assert isinstance(metrics['solved'], bool)
  assert params.items() <= record['config']['task'].items()
