"""Training pieces: losses/metrics against numpy, padded evaluation, a cell that learns, and
the timer's window selection."""
import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench import data
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.harness import runner
from archbench.benchmarks.measure import timing
from archbench.benchmarks.harness import train as train_lib


def _log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _ce(logits, targets):
  """Per-example cross-entropy with integer labels, float64."""
  logp = _log_softmax(logits.astype(np.float64))
  return -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def _np_metrics(kind, outputs, batch, weights=None):
  """Independent numpy reference for finalize(batch_stats(...)) on one batch."""
  n = len(batch['targets'])
  w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
  outputs = np.asarray(outputs, np.float64)
  targets = np.asarray(batch['targets'])
  if kind == 'regress':
    keep = w > 0
    err = outputs[keep] - targets[keep]
    wk = w[keep][:, None]
    # Weighted mean over examples of the mean over output dims.
    return {'loss': np.sum(wk * err**2) / (wk.sum() * err.shape[1]),
            'mse': np.sum(wk * err**2) / (wk.sum() * err.shape[1]),
            'mae': np.sum(wk * np.abs(err)) / (wk.sum() * err.shape[1])}
  ce = _ce(outputs, targets)
  hit = (outputs.argmax(-1) == targets).astype(np.float64)
  if kind == 'classify':
    return {'loss': np.sum(w * ce) / w.sum(), 'accuracy': np.sum(w * hit) / w.sum()}
  lw = batch['loss_mask'] * w[:, None]
  mw = batch['metric_mask'] * w[:, None]
  return {'loss': np.sum(lw * ce) / lw.sum(), 'accuracy': np.sum(mw * hit) / mw.sum()}


def _check(got, expected, prefix='eval'):
  assert set(got) == {f'{prefix}/{k}' for k in expected}
  for k, v in expected.items():
    assert got[f'{prefix}/{k}'] == pytest.approx(v, rel=1e-5, abs=1e-6), k


# ---------------------------------------------------------------------------------------
# batch_stats / finalize.

@pytest.mark.parametrize('weighted', [False, True])
def test_classify_stats(weighted):
  rng = np.random.default_rng(0)
  spec = data.build('digits').spec
  b, k = 40, spec.num_classes
  logits = rng.standard_normal((b, k)).astype(np.float32) * 3
  targets = rng.integers(0, k, b).astype(np.int32)
  targets[:15] = logits[:15].argmax(-1)  # some hits, so the accuracy is not ~0
  w = (rng.random(b) > 0.3).astype(np.float32) if weighted else None
  batch = {'targets': jnp.asarray(targets)}
  sums = train_lib.batch_stats(spec, jnp.asarray(logits), batch,
                               None if w is None else jnp.asarray(w))
  _check(train_lib.finalize(spec, jax.device_get(sums), 'eval'),
         _np_metrics('classify', logits, {'targets': targets}, w))


@pytest.mark.parametrize('weighted', [False, True])
def test_per_token_stats_with_masks(weighted):
  rng = np.random.default_rng(1)
  spec = data.build('copy', length=3, eval_size=4).spec
  b, t, k = 12, 9, spec.num_classes
  logits = rng.standard_normal((b, t, k)).astype(np.float32) * 3
  targets = rng.integers(0, k, (b, t)).astype(np.int32)
  targets[:, :4] = logits[:, :4].argmax(-1)
  # Loss and metric masks that differ, so a swap of the two is caught.
  loss_mask = (rng.random((b, t)) > 0.2).astype(np.float32)
  metric_mask = np.zeros((b, t), np.float32)
  metric_mask[:, 2:6] = 1
  w = (rng.random(b) > 0.3).astype(np.float32) if weighted else None
  batch = {'targets': targets, 'loss_mask': loss_mask, 'metric_mask': metric_mask}
  sums = train_lib.batch_stats(spec, jnp.asarray(logits),
                               jax.tree_util.tree_map(jnp.asarray, batch),
                               None if w is None else jnp.asarray(w))
  _check(train_lib.finalize(spec, jax.device_get(sums), 'train'),
         _np_metrics('per_token', logits, batch, w), prefix='train')


@pytest.mark.parametrize('weighted', [False, True])
def test_regress_stats(weighted):
  rng = np.random.default_rng(2)
  spec = data.build('adding', length=4, eval_size=4).spec
  b, o = 30, 3
  outputs = rng.standard_normal((b, o)).astype(np.float32)
  targets = rng.standard_normal((b, o)).astype(np.float32)
  w = (rng.random(b) > 0.3).astype(np.float32) if weighted else None
  sums = train_lib.batch_stats(spec, jnp.asarray(outputs), {'targets': jnp.asarray(targets)},
                               None if w is None else jnp.asarray(w))
  _check(train_lib.finalize(spec, jax.device_get(sums), 'eval'),
         _np_metrics('regress', outputs, {'targets': targets}, w))


# ---------------------------------------------------------------------------------------
# Padded evaluation equals an unpadded numpy computation.

@pytest.mark.parametrize('arch_name,task_name,params,eval_batch', [
    ('gru', 'adding', {'length': 6, 'eval_size': 37}, 16),
    ('transformer', 'copy', {'length': 2, 'eval_size': 37}, 16),
    ('cnn', 'digits', {}, 100),  # 359 test images: the last batch is mostly padding
])
def test_padded_evaluate_matches_unpadded_numpy(arch_name, task_name, params, eval_batch):
  arch = archs.get(arch_name)
  task = data.build(task_name, seed=0, **params)
  spec = task.spec
  config = model_lib.resolve_config(arch, 'tiny', spec)
  model = model_lib.build_model(arch, config, spec)
  ev = task.eval_data
  n = len(ev['targets'])
  assert n % eval_batch != 0  # there is padding
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(ev['inputs'][:2]))
  outputs = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(ev['inputs'])))

  batches, weights = train_lib.pad_eval_set(ev, eval_batch)
  num_batches = -(-n // eval_batch)
  assert weights.shape == (num_batches, eval_batch)
  assert float(weights.sum()) == n
  assert batches['targets'].shape[:2] == (num_batches, eval_batch)
  evaluate = jax.jit(functools.partial(train_lib.evaluate, model=model, spec=spec))
  got = train_lib.finalize(spec, jax.device_get(evaluate(variables, batches, weights)), 'eval')
  _check(got, _np_metrics(spec.kind, outputs, ev))


# ---------------------------------------------------------------------------------------
# A cell that learns.

def test_cnn_learns_digits():
  cell = Cell('cnn', 'digits', 'tiny', seed=0, train=TrainConfig(
      steps=150, batch_size=32, lr=3e-3, warmup_steps=10, steps_per_dispatch=25))
  out = {}
  runner.measure_cell(cell, out)
  metrics = out['metrics']
  baseline = metrics['baseline/eval/accuracy']
  assert baseline < 0.15  # the majority class of 10 balanced classes
  assert metrics['eval/accuracy'] > 0.7, metrics  # seeds 0-2 reach 0.88-0.95
  assert metrics['train/steps'] == 150
  assert metrics['solved'] == (metrics['eval/accuracy'] >= 0.95)


# ---------------------------------------------------------------------------------------
# Chrono: window selection with a fake clock (exact), and with real sleeps (ordering only).

class _FakeClock:
  def __init__(self):
    self.now = 100.0

  def perf_counter(self):
    return self.now


def test_chrono_drops_warmup_and_takes_median(monkeypatch):
  clock = _FakeClock()
  monkeypatch.setattr(timing, 'time', types.SimpleNamespace(perf_counter=clock.perf_counter))

  def work(seconds):
    clock.now += seconds
    return jnp.zeros(())
  chrono = timing.Chrono(warmup_windows=1)
  # (window seconds, steps): per-step 5.0 (warm-up), 0.2, 0.1, 0.3, 0.05, 0.4
  for seconds, steps in [(10.0, 2), (1.0, 5), (0.5, 5), (3.0, 10), (0.25, 5), (2.0, 5)]:
    chrono.time(work, seconds, steps=steps)
  per_step = np.array([0.2, 0.1, 0.3, 0.05, 0.4])
  assert chrono.timed_windows == 5
  assert chrono.median_s == pytest.approx(np.median(per_step))  # 0.2, not 5.0's influence
  assert chrono.spread_s == pytest.approx((0.05, 0.4))


def test_chrono_even_count_and_warmup_only(monkeypatch):
  clock = _FakeClock()
  monkeypatch.setattr(timing, 'time', types.SimpleNamespace(perf_counter=clock.perf_counter))

  def work(seconds):
    clock.now += seconds
  chrono = timing.Chrono(warmup_windows=2)
  assert chrono.median_s is None and chrono.spread_s is None
  chrono.time(work, 8.0, steps=4)  # only warm-up so far: it is used rather than nothing
  assert chrono.timed_windows == 1 and chrono.median_s == pytest.approx(2.0)
  for seconds in (9.0, 1.0, 3.0, 2.0, 6.0):
    chrono.time(work, seconds, steps=1)
  # Windows 3..6 are timed: per-step 1, 3, 2, 6 -> median of an even count = 2.5.
  assert chrono.timed_windows == 4
  assert chrono.median_s == pytest.approx(2.5)


def test_chrono_with_real_sleeps_selects_the_median_window():
  import time
  chrono = timing.Chrono(warmup_windows=1)
  durations = [0.15, 0.01, 0.06, 0.03]  # warm-up longest; then 10, 60, 30 ms

  def work(seconds):
    time.sleep(seconds)
    return jnp.ones(())
  for d in durations:
    out = chrono.time(work, d, steps=1)
  assert float(out) == 1.0  # the function's result is passed through
  measured = [s for s, _ in chrono.windows]
  assert all(m >= d for m, d in zip(measured, durations))  # a sleep never ends early
  # The median is the middle timed window (the 30 ms one), never the warm-up window.
  assert chrono.median_s == sorted(measured[1:])[1]
  assert chrono.median_s != measured[0]
  assert chrono.timed_windows == 3


def test_cell_trains_exactly_the_steps_asked():
  """7 steps in dispatches of 5: 5 + a remainder of 2, not 5 (the schedule decays over
  all 7), and the train loss comes from the last step taken."""
  train = TrainConfig(steps=7, batch_size=4, warmup_steps=1, steps_per_dispatch=5,
                      eval_batch_size=16)
  cell = Cell('rnn', 'adding', 'tiny', task_params={'length': 4, 'eval_size': 16},
              train=train, fast_compile=True)
  record = runner.run_cell(cell, suite='t', run_id='t', env={})
  assert record['status'] == 'ok', record['error']
  assert record['metrics']['train/steps'] == 7
  assert record['perf']['timed_windows'] == 1  # only the whole window of 5 is timed
