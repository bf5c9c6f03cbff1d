"""FLOP counts: each backbone's analytic forward count against XLA's cost_analysis() on a
short case (recurrences fully unrolled so XLA sees every step), and the harness's reading of
a compiled lax.scan over k train steps as one step."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import pytest

from archbench import archs
from archbench import data
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import runner
from archbench.benchmarks.core import TrainConfig
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.measure import timing
from selection import quick_subset  # tests/selection.py

B, T = 2, 8
IMAGE = (8, 8, 1)  # the digits' shape, what the harness feeds the CNN


def _xla_flops(fn, *args):
  # The fast-compile options change LLVM's code generation only, after XLA's HLO passes, so
  # the count is the one a default compile gives, in a fraction of the time.
  cost = jax.jit(fn).lower(*args).compile(timing.FAST_COMPILE).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


def _short_case(name):
  """(spec, config, module, flops shape, input shapes) of a short case at size tiny, with
  any scan fully unrolled: XLA counts a loop body once, so it then counts every step."""
  spec = archs.get(name)
  cfg = spec.config('tiny')
  if spec.uses_scan:
    assert 'unroll' in {f.name for f in dataclasses.fields(cfg)}, (
        f'{name} scans but its config has no `unroll` to check its FLOPs against XLA')
    cfg = dataclasses.replace(cfg, unroll=True)
  if spec.input_kind == 'image':
    shape, inputs = IMAGE, [(B, *IMAGE)]
  elif spec.input_kind == 'encdec':
    shape, inputs = (T - 2, T, cfg.width), [(B, T - 2, cfg.width), (B, T, cfg.width)]
  else:
    shape, inputs = (T, cfg.width), [(B, T, cfg.width)]
  return spec, cfg, spec.build(cfg), shape, inputs


@pytest.mark.parametrize('name', archs.names())
def test_analytic_forward_flops_match_xla(name):
  spec, cfg, module, shape, inputs = _short_case(name)
  inputs = [jnp.zeros(s, jnp.float32) for s in inputs]
  params = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)
  params = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), params)
  xla = _xla_flops(lambda p, *x: module.apply(p, *x), params, *inputs)
  analytic = B * spec.flops(cfg, shape)
  assert xla > 0
  ratio = analytic / xla
  assert abs(ratio - 1) <= 0.10, f'{name}: analytic/XLA = {ratio:.3f} ({analytic:.0f} vs {xla:.0f})'


def test_unrolled_recurrence_is_counted_per_step():
  """Guards the test above: without unrolling XLA undercounts by about T; unrolled it
  grows linearly with T, like the analytic count."""
  spec = archs.get('gru')
  cfg = spec.config('tiny')

  def flops(config, t):
    module = spec.build(config)
    x = jnp.zeros((1, t, config.width))
    params = jax.tree_util.tree_map(
        lambda s: jnp.zeros(s.shape, s.dtype),
        jax.eval_shape(module.init, jax.random.PRNGKey(0), x))
    return _xla_flops(lambda p, x: module.apply(p, x), params, x)
  unrolled = dataclasses.replace(cfg, unroll=True)
  assert flops(unrolled, 8) == pytest.approx(2 * flops(unrolled, 4), rel=0.05)
  assert flops(cfg, 8) < 0.5 * flops(unrolled, 8)


def test_train_chunk_flops_are_one_step():
  """runner._xla_flops_per_step takes a compiled scan over k steps as one step's FLOPs."""
  arch = archs.get('transformer')
  task = data.build('copy', length=4, eval_size=8)
  config = model_lib.resolve_config(arch, 'tiny', task.spec)
  model = model_lib.build_model(arch, config, task.spec)
  tc = TrainConfig(steps=8, batch_size=4)
  optimizer = train_lib.make_optimizer(tc)
  state = train_lib.init_state(model, task, optimizer, jax.random.PRNGKey(0), tc.batch_size)
  counts = {}
  for k in (1, 4):
    chunk = functools.partial(train_lib.train_chunk, model=model, task=task,
                              optimizer=optimizer, batch_size=tc.batch_size, num_steps=k)
    compiled = jax.jit(chunk).lower(state, jax.random.PRNGKey(1)).compile(timing.FAST_COMPILE)
    counts[k] = runner._xla_flops_per_step(compiled)
  assert counts[1] is not None and counts[1] > 0
  assert counts[4] == pytest.approx(counts[1], rel=0.02)
  # And one step is about 3x the forward pass (forward + backward), per the analytic count.
  forward = model_lib.forward_flops(arch, config, task.spec) * tc.batch_size
  assert 2.0 < counts[1] / forward < 4.5


@pytest.mark.parametrize('name', quick_subset(archs.names()))
def test_analytic_train_flops_match_xla(name):
  """Forward + backward: XLA's count of the gradient (w.r.t. parameters and inputs, as in
  training, where the input adapter is trained) against (1 + backward_factor) x forward."""
  spec, cfg, module, shape, shapes = _short_case(name)
  inputs = [jax.random.normal(jax.random.PRNGKey(i), s) for i, s in enumerate(shapes)]
  params = module.init(jax.random.PRNGKey(9), *inputs)
  # An image is data, not an activation: its gradient is not computed in training.
  wrt = (0,) if spec.input_kind == 'image' else tuple(range(len(inputs) + 1))
  grad = jax.grad(lambda p, *x: jnp.sum(module.apply(p, *x)), argnums=wrt)
  xla = _xla_flops(grad, params, *inputs)
  analytic = B * (1 + spec.backward_factor) * spec.flops(cfg, shape)
  ratio = analytic / xla
  assert abs(ratio - 1) <= 0.10, f'{name}: analytic/XLA = {ratio:.3f} ({analytic:.0f} vs {xla:.0f})'
