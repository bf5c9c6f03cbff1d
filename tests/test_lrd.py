"""Long-range probes: the theory they must reproduce, and every architecture through them.

The gradient probe is checked where the answer is known in closed form (a scalar linear
recurrence, an Elman RNN in its linear regime with an orthogonal recurrence scaled to
radius ρ, a TCN's receptive field) and against the qualitative claim of constant path
length for attention.
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench import data
from archbench.archs import tcn
from archbench.benchmarks.harness.evaluators import gradient as lrd
from archbench.benchmarks.harness import runner
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.measure import timing


def _scalar_recurrence(a):
  """x [B, L, 1] -> h_{L-1} [B, 1] of h_t = a h_{t-1} + x_t, h_{-1} = 0."""
  def run(x):
    def step(h, x_t):
      return a * h + x_t, None
    h, _ = jax.lax.scan(step, jnp.zeros(x.shape[0]), jnp.swapaxes(x[..., 0], 0, 1))
    return h[:, None]
  return run


@pytest.mark.parametrize('a', [0.5, 0.9, 0.99])
def test_scalar_linear_recurrence_gives_a_to_the_k(a):
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 40, 1))
  readout = _scalar_recurrence(a)
  # Exact gradient of a per-example loss (h²/2: its gradient at t is h · a^k) ...
  exact = lrd.by_distance(lrd.position_norms(lambda x: jnp.sum(readout(x) ** 2) / 2, x))
  # ... and the Jacobian estimate of the per-token probe (scalar output: |u| a^k).
  estimate = lrd.by_distance(lrd.position_norms(readout, x, jax.random.PRNGKey(1), 3))
  k = np.arange(40)
  for curve in (exact, estimate):
    np.testing.assert_allclose(curve / curve[0], a ** k, rtol=1e-4)
    assert lrd.summarize(curve)['rate'] == pytest.approx(math.log(a), rel=1e-4)


def test_summary_figures_of_known_curves():
  k = np.arange(100)
  decaying = 0.8 ** k
  s = lrd.summarize(decaying)
  assert s['rate'] == pytest.approx(math.log(0.8))
  assert s['horizon'] == int(math.log(1e-3) / math.log(0.8))  # 0.8^k >= 1e-3 up to here
  assert s['far_near'] == pytest.approx(decaying[75:].mean() / decaying[:25].mean())
  flat = lrd.summarize(np.full(100, 2.0))
  assert flat == {'rate': pytest.approx(0.0, abs=1e-12), 'horizon': 99, 'far_near': 1.0}
  cut = np.where(k < 10, 1.0, 0.0)  # exact zeros beyond a window: no log(0) in the fit
  assert lrd.summarize(cut)['horizon'] == 9
  assert lrd.summarize(cut)['rate'] == pytest.approx(0.0, abs=1e-12)


def test_per_example_norms_do_not_mix_examples():
  """Example 1's input is scaled by 10: its norms must be 10x example 0's (the loss is
  h²/2, linear in the input's scale), so the batch mean is 5.5x example 0's."""
  x0 = jax.random.normal(jax.random.PRNGKey(0), (1, 16, 1))
  readout = _scalar_recurrence(0.7)
  loss = lambda x: jnp.sum(readout(x) ** 2) / 2
  one = lrd.position_norms(loss, x0)
  both = lrd.position_norms(loss, jnp.concatenate([x0, 10 * x0]))
  np.testing.assert_allclose(both, 5.5 * one, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Registered architectures, through the harness's TaskModel.

@functools.cache
def _task(name, **params):
  return data.build(name, **params)


def _model(arch_name, task, overrides=()):
  arch = archs.get(arch_name)
  config = model_lib.resolve_config(arch, 'tiny', task.spec, dict(overrides))
  return model_lib.build_model(arch, config, task.spec)


# Compiled for compile speed, as the harness compiles smoke cells (no backend optimisation).
_jit = functools.partial(jax.jit, compiler_options=timing.FAST_COMPILE)


def _init(model, task):
  return _jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(task.eval_data['inputs'][:1]))


def _profile(model, task, params=None, n=32):
  """The probe's curve by distance, at `params` (default: the initialisation, made inside
  the same compiled call: one compilation rather than one for init and one for the probe)."""
  batch = {k: jnp.asarray(v[:n]) for k, v in task.eval_data.items()}
  profile = lambda p: lrd.gradient_profile(model, p, task.spec, batch, jax.random.PRNGKey(1))
  if params is None:
    first = jnp.asarray(task.eval_data['inputs'][:1])
    return lrd.by_distance(_jit(
        lambda: profile(model.init(jax.random.PRNGKey(0), first)))())
  return lrd.by_distance(_jit(profile)(params))


def test_tcn_gradient_is_zero_beyond_the_receptive_field():
  task = _task('adding', length=48, eval_size=32)
  model = _model('tcn', task, {'num_blocks': 2})
  field = tcn.receptive_field(model.backbone.config)
  assert field < 48
  curve = _profile(model, task)
  assert np.all(curve[:field] > 0)
  np.testing.assert_array_equal(curve[field:], 0.0)
  assert lrd.summarize(curve)['horizon'] < field


def test_elman_rnn_decays_at_the_log_of_its_spectral_radius():
  """Recurrent kernel ρ·Q with Q orthogonal, inputs scaled down so that tanh' ≈ 1: the
  gradient at distance k is ρ^k times the one at 0, so the fitted rate is ln ρ (within 3%:
  the tanh's slight saturation makes it decay a little faster)."""
  rho = 0.8
  task = _task('adding', length=48, eval_size=32)
  model = _model('rnn', task, {'num_layers': 1})
  params = _init(model, task)
  cell = params['params']['backbone']['layer_0']['cell']
  h = cell['h']['kernel'].shape[0]
  q, _ = np.linalg.qr(np.random.RandomState(0).normal(size=(h, h)))
  cell['h']['kernel'] = jnp.asarray(rho * q, jnp.float32)
  cell['i']['kernel'] = cell['i']['kernel'] * 1e-3
  curve = _profile(model, task, params)
  rate = lrd.summarize(curve)['rate']
  assert rate < 0
  assert rate == pytest.approx(math.log(rho), rel=0.03)


def test_attention_has_no_systematic_decay_at_init_unlike_the_elman_rnn():
  task = _task('adding', length=48, eval_size=32)  # the task of the two tests above
  rates = {name: lrd.summarize(_profile(_model(name, task), task))['rate']
           for name in ('transformer', 'rnn')}
  assert rates['rnn'] < -0.05
  assert abs(rates['transformer']) < 0.1 * abs(rates['rnn'])


# ---------------------------------------------------------------------------------------
# Every registered architecture through both probes.

def _probe_task(arch):
  """A task the architecture serves, and the two lengths of its sweep."""
  if arch.input_kind == 'image':
    return 'digits', ({},)  # images have one size; the gradient probe reads the pixels
  if arch.input_kind == 'encdec':
    return 'translate', ({'max_value': 100, 'test_size': 16},)
  return 'adding', ({'length': 8, 'eval_size': 16}, {'length': 16, 'eval_size': 16})


# A length sweep of two cells per architecture through the whole harness (run_cell): a small
# suite run, so slow; the probes' arithmetic is checked by the fast tests above.
@pytest.mark.slow
@pytest.mark.parametrize('arch_name', archs.names())
def test_every_architecture_runs_through_both_probes(arch_name):
  task_name, sweep = _probe_task(archs.get(arch_name))
  train = TrainConfig(steps=2, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                      eval_batch_size=16)
  records = []
  depth = archs.get(arch_name).depth_overrides(1)  # as smoke: compile time grows with depth
  for params in sweep:
    cell = Cell(arch_name, task_name, 'tiny', 0, params, depth, train, True,
                       ('gradient', 'length'))
    record = runner.run_cell(cell, suite='test', run_id='test', env={})
    assert record['status'] == 'ok', record['error']
    records.append(record)
    m = record['metrics']
    for when in ('init', 'trained'):
      curve = np.asarray(m[f'lrd/grad_{when}'])
      assert curve.ndim == 1 and len(curve) >= m['lrd/length']
      assert np.all(np.isfinite(curve)) and curve.max() > 0
      assert m[f'lrd/horizon_{when}'] < len(curve)
  lengths = [r['metrics']['lrd/length'] for r in records]
  assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)


@pytest.mark.slow
def test_the_gradient_probe_refuses_a_padded_task_and_the_run_goes_on():
  """Its distances count back from the last position, which padding would occupy: the
  cell fails with one line saying why (an encoder-decoder's padded source is fine, above)."""
  train = TrainConfig(steps=2, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                      eval_batch_size=16)
  cell = Cell('lstm', 'listops', 'tiny', 0, {'max_length': 24, 'min_length': 6,
                                             'num_examples': 120, 'max_depth': 4},
              {}, train, True, ('gradient',))
  record = runner.run_cell(cell, suite='test', run_id='test', env={})
  assert record['status'] == 'error'
  assert 'the gradient probe needs a task without padding; listops' in record['error']
