"""The task zoo's offline tasks: ListOps (labels against an independent evaluator, limits,
cache, split), the Markov-source language model (entropy rate, validity scoring,
sampling) and Mackey-Glass forecasting (integrator against a reference, baselines
recomputed, time split); one end-to-end harness cell per task."""
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import data
from archbench.benchmarks.harness import generate
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.harness import train as train_lib
from archbench.data import cache, forecast, language, listops
from archbench.data import spec as spec_lib

# One configuration per task, shared by the tests (the harness cells included), so that
# generators and models compile for few shapes.
LO = {'max_depth': 4, 'max_args': 5, 'min_length': 16, 'max_length': 48,
      'num_examples': 600, 'test_fraction': 0.2}
LM = {'length': 32, 'eval_size': 64}
FC = {'length': 16, 'horizon': 4, 'train_length': 600, 'test_length': 200}


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
  val_rows = _rows(task.val_data['inputs'])
  # val_fraction 0.1 of all, out of the training part
  assert len(val_rows) == task.val_size == round(0.1 * LO['num_examples'])
  assert not test_rows & train_rows and not val_rows & (train_rows | test_rows)
  # every expression distinct
  assert len(train_rows | val_rows | test_rows) == LO['num_examples']
  # The run's seed changes nothing; split_seed reshuffles the same pool; data_seed
  # generates other expressions.
  same = data.build('listops', seed=7, **LO)
  np.testing.assert_array_equal(same.eval_data['inputs'], task.eval_data['inputs'])
  resplit = data.build('listops', split_seed=1, **LO)
  assert _rows(resplit.eval_data['inputs']) != test_rows
  assert len(_rows(resplit.eval_data['inputs']) & (train_rows | val_rows | test_rows)) == 120
  other = data.build('listops', data_seed=1, **LO)
  assert len(_rows(other.eval_data['inputs']) & (train_rows | val_rows | test_rows)) < 12


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
  with pytest.raises(ValueError):  # no test expression at all
    data.build('listops', num_examples=4, test_fraction=0.1)
  # Only 4 operators x 10 x 10 expressions of 4 tokens exist.
  with pytest.raises(ValueError, match='distinct'):
    data.build('listops', max_depth=2, max_args=2, min_length=4, max_length=4,
               num_examples=401)


# ---------------------------------------------------------------------------------------
# Language modelling on a Markov source.

def _source(task):
  p = task.params
  return language.markov_source(p['alphabet_size'], p['order'], p['support'], p['source_seed'])


def _context_index(window, v):
  return sum(int(c) * v ** (len(window) - 1 - i) for i, c in enumerate(window))


def test_lm_source_table_and_stationary_distribution():
  task = data.build('lm', **LM)
  source = _source(task)
  v, k, support = 16, 2, 4
  p, pi = source.transitions, source.stationary
  assert p.shape == (v ** k, v) and pi.shape == (v ** k,)
  np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
  assert np.all(np.count_nonzero(p, axis=1) == support)
  assert np.all(pi >= 0) and pi.sum() == pytest.approx(1.0, rel=1e-12)
  # Stationary: one step of the chain, written out context by context, leaves pi as is.
  after = np.zeros_like(pi)
  for s in range(v ** k):
    window = [(s // v ** (k - 1 - i)) % v for i in range(k)]
    for c in range(v):
      after[_context_index(window[1:] + [c], v)] += pi[s] * p[s, c]
  np.testing.assert_allclose(after, pi, atol=1e-12)
  # The entropy rate and the unigram entropy, recomputed.
  rate = sum(pi[s] * -sum(q * math.log2(q) for q in p[s] if q > 0) for s in range(v ** k))
  unigram = np.array([sum(pi[s] for s in range(v ** k) if s % v == c) for c in range(v)])
  assert source.entropy_rate == pytest.approx(rate, rel=1e-12)
  assert source.unigram_entropy == pytest.approx(-np.sum(unigram * np.log2(unigram)), rel=1e-12)
  assert 1.0 < source.entropy_rate < source.unigram_entropy - 1.0  # memory is worth bits


def test_lm_spec_and_baselines():
  task = data.build('lm', **LM)
  spec, source = task.spec, _source(task)
  assert spec.kind == 'per_token' and spec.causal and spec.length == LM['length']
  assert spec.metric == 'eval/bits_per_char' and not spec.higher_is_better
  assert spec.baselines['eval/bits_per_char'] == source.unigram_entropy
  assert spec.baselines['eval/loss'] == pytest.approx(source.unigram_entropy * math.log(2))
  assert spec.baselines['floor/bits_per_char'] == source.entropy_rate
  assert spec.solved == pytest.approx(1.05 * source.entropy_rate)
  assert spec.baselines['eval/sample_valid_transitions'] == 4 / 16
  assert task.prompt_length == 2 and task.score_samples is not None


def test_lm_batches_are_next_character_prediction():
  task = data.build('lm', **LM)
  b = _draw(task, jax.random.PRNGKey(0), 64)
  x, y = b['inputs'], b['targets']
  assert x.shape == y.shape == (64, LM['length']) and x.min() >= 0 and x.max() < 16
  np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
  mask = np.ones(LM['length'])
  mask[0] = 0  # order 2: the first target has one character of context only
  np.testing.assert_array_equal(b['loss_mask'], np.broadcast_to(mask, x.shape))
  np.testing.assert_array_equal(b['metric_mask'], b['loss_mask'])


def test_lm_empirical_entropy_matches_the_rate():
  """-mean log2 P(x_t | context) of 256k sampled characters, and the plug-in conditional
  entropy of their counts, are within 1% of the stated entropy rate."""
  task = data.build('lm', length=1001, eval_size=2)
  source = _source(task)
  b = _draw(task, jax.random.PRNGKey(3), 256)
  tokens = np.concatenate([b['inputs'][:, :1], b['targets']], axis=1)  # [B, L + 1]
  ctx = sum(tokens[:, i:tokens.shape[1] - 2 + i] * 16 ** (1 - i) for i in range(2))
  nxt = tokens[:, 2:]
  probs = source.transitions[ctx, nxt]
  assert np.all(probs > 0)  # the source never emits an impossible transition
  assert -np.mean(np.log2(probs)) == pytest.approx(source.entropy_rate, rel=0.01)
  counts = np.zeros((256, 16))
  np.add.at(counts, (ctx.ravel(), nxt.ravel()), 1)
  joint = counts / counts.sum()
  cond = counts / np.maximum(counts.sum(1, keepdims=True), 1)
  plug_in = -np.sum(joint[counts > 0] * np.log2(cond[counts > 0]))
  assert plug_in == pytest.approx(source.entropy_rate, rel=0.01)


def test_lm_sequences_start_from_the_stationary_distribution():
  task = data.build('lm', length=3, eval_size=2)
  pi = _source(task).stationary
  first = _draw(task, jax.random.PRNGKey(4), 40_000)['inputs'][:, :2]
  freq = np.bincount(first[:, 0] * 16 + first[:, 1], minlength=256) / len(first)
  assert 0.5 * np.abs(freq - pi).sum() < 0.05
  assert 0.5 * np.abs(np.full(256, 1 / 256) - pi).sum() > 0.2  # a test that could fail


def test_lm_determinism_and_streams():
  a, b = data.build('lm', seed=3, **LM), data.build('lm', seed=3, **LM)
  c = data.build('lm', seed=4, **LM)
  np.testing.assert_array_equal(a.eval_data['inputs'], b.eval_data['inputs'])
  assert not np.array_equal(a.eval_data['inputs'], c.eval_data['inputs'])
  eager = a.train_batch(jax.random.PRNGKey(1), 16)
  np.testing.assert_array_equal(_draw(a, jax.random.PRNGKey(1), 16)['inputs'], eager['inputs'])
  # Training text never repeats the held-out text (16**32-ish sequences).
  train = _draw(a, jax.random.fold_in(spec_lib.train_key(3), 0), 512)['inputs']
  assert not _rows(train) & _rows(a.eval_data['inputs'])
  # The source is fixed by source_seed, not by the run's seed.
  np.testing.assert_array_equal(_source(a).transitions, _source(c).transitions)
  other = data.build('lm', source_seed=1, **LM)
  assert not np.array_equal(_source(other).transitions, _source(a).transitions)


def test_lm_scorer_flags_an_invalid_transition():
  task = data.build('lm', **LM)
  source = _source(task)
  text = np.concatenate([task.eval_data['inputs'], task.eval_data['targets'][:, -1:]], axis=1)
  assert task.score_samples(text) == {'sample_valid_transitions': 1.0, 'sample_valid': 1.0}
  # Replace the last character of one sequence by one its context forbids.
  bad = text.copy()
  context = _context_index(bad[5, -3:-1], 16)
  bad[5, -1] = np.flatnonzero(source.transitions[context] == 0)[0]
  scores = task.score_samples(bad)
  n, t = bad.shape
  assert scores['sample_valid_transitions'] == pytest.approx(1 - 1 / (n * (t - 2)))
  assert scores['sample_valid'] == pytest.approx(1 - 1 / n)


class _TableModel:
  """Test stand-in for a trained causal model: at position t its logits are the source's
  log-probabilities of the next character given characters t-1 and t (uniform at t = 0),
  or uniform everywhere when `table` is None."""

  def __init__(self, table):
    self.table = table

  def apply(self, params, tokens, train=False):
    del params, train
    b, t = tokens.shape
    if self.table is None:
      return jnp.zeros((b, t, 16))
    previous = jnp.pad(tokens, ((0, 0), (1, 0)))[:, :-1]  # [B, T]: token t - 1 (0 at t = 0)
    logits = jnp.log(jnp.asarray(self.table, jnp.float32))[previous * 16 + tokens]
    return jnp.where((jnp.arange(t) >= 1)[None, :, None], logits, 0.0)


@pytest.mark.parametrize('true_model', [True, False])
def test_generate_is_valid_from_the_source_and_not_from_noise(true_model):
  task = data.build('lm', **LM)
  source = _source(task)
  model = _TableModel(source.transitions if true_model else None)
  prompts = jnp.asarray(task.eval_data['inputs'][:, :2])
  samples = np.asarray(jax.jit(lambda p, k: generate.sample(
      None, p, k, model=model, length=LM['length']))(prompts, jax.random.PRNGKey(0)))
  assert samples.shape == (64, LM['length'])
  np.testing.assert_array_equal(samples[:, :2], task.eval_data['inputs'][:, :2])
  scores = task.score_samples(samples)
  ctx = samples[:, :-2] * 16 + samples[:, 1:-1]
  bits = -np.mean(np.log2(np.maximum(source.transitions[ctx, samples[:, 2:]], 1e-30)))
  if true_model:
    assert scores == {'sample_valid_transitions': 1.0, 'sample_valid': 1.0}
    # Sampled at temperature 1, not greedily: the samples carry the source's entropy.
    assert bits == pytest.approx(source.entropy_rate, rel=0.08)
  else:
    assert scores['sample_valid_transitions'] == pytest.approx(0.25, abs=0.04)
    assert scores['sample_valid'] == 0.0
  # The harness's entry point gives the same scores for the same key.
  harness, _ = generate.sample_and_score(None, task, jax.random.PRNGKey(0), model=model,
                                         num_samples=64, fast=True)
  assert harness == {f'eval/{k}': v for k, v in scores.items()}


def test_bits_per_char_only_for_causal_per_token_tasks():
  sums = {'loss': 6.0, 'count': 3.0, 'correct': 1.0, 'metric_count': 2.0, 'examples': 1.0}
  lm = data.build('lm', **LM).spec
  out = train_lib.finalize(lm, sums, 'eval')
  assert out['eval/bits_per_char'] == pytest.approx(2.0 / math.log(2))
  copy = data.build('copy', length=4, eval_size=2).spec
  assert 'eval/bits_per_char' not in train_lib.finalize(copy, sums, 'eval')


# ---------------------------------------------------------------------------------------
# Mackey-Glass forecasting.

def _euler_reference(duration, x0, dt=0.0005):
  """Forward Euler of the same delay equation with a fine step (constant history)."""
  delay = round(17 / dt)
  x = [x0] * (delay + 1)
  for _ in range(round(duration / dt)):
    lagged = x[-1 - delay]
    x.append(x[-1] + dt * (0.2 * lagged / (1 + lagged ** 10) - 0.1 * x[-1]))
  return np.array(x[delay::round(1 / dt)])  # every time unit


def test_integrator_matches_a_fine_euler_reference():
  rk4 = forecast.mackey_glass(301, 1.0, x0=1.2, transient=0.0)
  reference = _euler_reference(300, 1.2)
  assert rk4.shape == reference.shape == (301,)
  # Both converge to the same solution: after 300 time units (several oscillations, the
  # chaotic growth of errors included) they agree to 1e-3 on a signal of range ~1.
  np.testing.assert_allclose(rk4, reference, atol=1e-3)
  assert np.abs(rk4 - reference).max() > 0  # not the same code path


def test_series_is_bounded_aperiodic_and_chaotic():
  clean, observed = forecast.observed_series(6000, 1.0, 0.02, 0)
  assert 0.2 < clean.min() and clean.max() < 1.5 and clean.std() > 0.15
  # Not periodic: no shift of 10..3000 samples maps the series onto itself.
  n = len(clean)
  closest = min(np.sqrt(np.mean((clean[:n - lag] - clean[lag:]) ** 2)) for lag in range(10, n // 2))
  assert closest > 0.05
  # Sensitive dependence: histories 1e-4 apart end up far apart.
  a = forecast.mackey_glass(3000, 1.0, x0=1.2, transient=0.0)
  b = forecast.mackey_glass(3000, 1.0, x0=1.2 + 1e-4, transient=0.0)
  assert np.abs(a[:200] - b[:200]).max() < 1e-2 and np.abs(a[-500:] - b[-500:]).max() > 0.1
  # The observations are the series plus noise of the stated size.
  assert np.std(observed - clean) == pytest.approx(0.02, rel=0.05)


def _forecast_series(task):
  p = task.params
  total = p['train_length'] + p['length'] + p['horizon'] + p['test_length']
  _, observed = forecast.observed_series(total, p['sample_every'], p['noise'], p['data_seed'])
  train = observed[:_train_end(p)]
  return (observed - train.mean()) / train.std()


def _train_end(p) -> int:
  """Where the training windows' segment ends: a window before the validation segment,
  the last val_length of train_length."""
  return p['train_length'] - p['val_length'] - p['length'] - p['horizon']


def _starts(rows, series):
  """The time index at which each window [N, T] starts in the (noisy, float32) series,
  found by its first two values."""
  where = {(a, b): i for i, (a, b) in enumerate(zip(series[:-1], series[1:]))}
  return np.array([where[(r[0], r[1])] for r in rows])


def test_forecast_windows_split_in_time_without_overlap():
  task = data.build('forecast', **FC)
  t, h = FC['length'], FC['horizon']
  series = _forecast_series(task).astype(np.float32)
  spec = task.spec
  assert spec.kind == 'regress' and spec.length == t and spec.out_dim == h
  assert spec.feature_dim == 1 and task.eval_data['inputs'].shape[1:] == (t, 1)
  test_starts = _starts(task.eval_data['inputs'][..., 0], series)
  drawn = _draw(task, jax.random.PRNGKey(0), 4096)
  train_starts = _starts(drawn['inputs'][..., 0], series)
  val_starts = _starts(task.val_data['inputs'][..., 0], series)
  for rows, starts, split in [(task.eval_data, test_starts, 'test'), (drawn, train_starts, 'train'),
                              (task.val_data, val_starts, 'validation')]:
    for x, y, s in zip(rows['inputs'][..., 0], rows['targets'], starts):
      np.testing.assert_allclose(x, series[s:s + t], rtol=1e-6, err_msg=split)
      np.testing.assert_allclose(y, series[s + t:s + t + h], rtol=1e-6, err_msg=split)
  # Every time index a training window reads (past and future) precedes, by at least a
  # window and a horizon, every index a test window reads.
  # The validation windows sit in the last val_length steps of train_length (a sixth by
  # default), a window and a horizon after every training window's last index.
  p = task.params
  assert p['val_length'] == FC['train_length'] // 6
  assert train_starts.max() + t + h <= _train_end(p)
  assert val_starts.min() >= _train_end(p) + t + h
  assert val_starts.max() + t + h <= FC['train_length']
  assert len(set(val_starts)) == task.val_size == p['val_length'] - t - h + 1
  assert test_starts.min() >= FC['train_length'] + t + h
  assert len(set(test_starts)) == task.eval_size == FC['test_length'] - t - h + 1
  assert len(set(train_starts)) > 0.9 * (_train_end(p) - t - h + 1)  # all are drawn
  # Normalised by the training part: mean 0, std 1 there.
  train_part = series[:_train_end(p)]
  assert abs(train_part.mean()) < 1e-5 and train_part.std() == pytest.approx(1, rel=1e-5)


def test_forecast_baselines_recomputed():
  task = data.build('forecast', **FC)
  t, h = FC['length'], FC['horizon']
  series = _forecast_series(task)
  x, y = task.eval_data['inputs'][..., 0].astype(np.float64), task.eval_data['targets']
  persistence = np.repeat(x[:, -1:], h, axis=1)
  base = task.spec.baselines
  assert base['persistence/mse'] == pytest.approx(np.mean((persistence - y) ** 2), rel=1e-5)
  assert base['persistence/mae'] == pytest.approx(np.mean(np.abs(persistence - y)), rel=1e-5)
  assert base['eval/mse'] == base['eval/loss'] == base['persistence/mse']
  # Linear AR(p = T) with a bias, every horizon step fitted directly on the training
  # windows (all of them, built here from the series).
  n_train = _train_end(task.params) - t - h + 1
  past = np.stack([series[i:i + t] for i in range(n_train)])
  future = np.stack([series[i + t:i + t + h] for i in range(n_train)])
  design = np.hstack([past, np.ones((n_train, 1))])
  w = np.linalg.lstsq(design, future, rcond=None)[0]
  predicted = np.hstack([x, np.ones((len(x), 1))]) @ w
  assert base['linear_ar/mse'] == pytest.approx(np.mean((predicted - y) ** 2), rel=1e-4)
  assert base['linear_ar/mae'] == pytest.approx(np.mean(np.abs(predicted - y)), rel=1e-4)
  assert task.spec.solved == base['linear_ar/mse'] < base['persistence/mse']
  assert task.spec.metric == 'eval/mse' and not task.spec.higher_is_better
  # A shorter AR order is a weaker (higher MSE) baseline.
  short = data.build('forecast', ar_order=2, **FC).spec.baselines['linear_ar/mse']
  assert short > base['linear_ar/mse']


def test_forecast_is_fixed_by_data_seed():
  a = data.build('forecast', **FC)
  b = data.build('forecast', seed=5, **FC)
  c = data.build('forecast', data_seed=1, **FC)
  np.testing.assert_array_equal(a.eval_data['inputs'], b.eval_data['inputs'])
  assert not np.allclose(a.eval_data['inputs'][:, :, 0], c.eval_data['inputs'][:, :, 0], atol=0.1)
  clean = data.build('forecast', noise=0.0, **FC)
  x = clean.eval_data['inputs'][..., 0]
  assert np.abs(np.diff(x, 2, axis=1)).max() < 0.2  # noiseless: smooth at this sampling


# ---------------------------------------------------------------------------------------
# End to end through the harness.

@pytest.mark.parametrize('task,params,keys', [
    ('listops', LO, ['eval/accuracy', 'baseline/eval/accuracy', 'baseline/eval/loss']),
    ('lm', LM, ['eval/bits_per_char', 'baseline/eval/bits_per_char',
                'baseline/floor/bits_per_char', 'eval/sample_valid_transitions',
                'eval/sample_valid']),
    ('forecast', FC, ['eval/mse', 'eval/mae', 'baseline/eval/mse',
                      'baseline/persistence/mse', 'baseline/linear_ar/mse',
                      'baseline/linear_ar/mae']),
])
def test_harness_cell(task, params, keys):
  from archbench.benchmarks.harness import runner
  cell = Cell('transformer', task, 'tiny', 0, params, {}, TrainConfig(
      steps=10, batch_size=8, steps_per_dispatch=5, eval_batch_size=64), fast_compile=True)
  record = runner.run_cell(cell, suite='test', run_id='test', env={})
  assert record['status'] == 'ok', record['error']
  metrics = record['metrics']
  for key in keys:
    assert math.isfinite(metrics[key]), key
  assert isinstance(metrics['solved'], bool)
  assert params.items() <= record['config']['task'].items()
  if task == 'lm':
    assert 0 <= metrics['eval/sample_valid'] <= metrics['eval/sample_valid_transitions'] <= 1
    assert metrics['eval/bits_per_char'] == pytest.approx(metrics['eval/loss'] / math.log(2))
    assert record['perf']['sample_compile_s'] > 0
