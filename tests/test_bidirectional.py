"""Bidirectional RNNs: each layer equals a forward cell loop concatenated with a backward
one (the cell run over the reversed sequence, reversed back), the stack is not causal, the
width contract holds, and the analytic FLOP count matches XLA's on an unrolled case."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench.archs import recurrent

B, T = 2, 7
BIDIRECTIONAL = ['birnn', 'bilstm', 'bigru']


def _rng(seed):
  return np.random.default_rng(seed)


def _random_params(module, x, seed, scale=0.3):
  """Fresh random values for every leaf (biases start at zero under the default init, so a
  reference that dropped a bias would otherwise still agree)."""
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  rng = _rng(seed)
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), jnp.float32), shapes)


@functools.cache
def _tiny(name):
  """The registered 'tiny' backbone and its jitted apply, shared by the tests below so that
  each arch compiles once (compiles dominate this file's runtime)."""
  cfg = archs.get(name).config('tiny')
  module = archs.get(name).build(cfg)
  return cfg, module, jax.jit(module.apply)


def _cell_loop(cell, cell_params, x):
  """Step the pure cell over x [B, T, D] from a zero state, one token at a time."""
  carry = cell.initialize_carry(jax.random.PRNGKey(0), (x.shape[0], cell.features))
  outputs = []
  for t in range(x.shape[1]):
    carry, y = cell.apply({'params': cell_params}, carry, x[:, t])
    outputs.append(y)
  return jnp.stack(outputs, axis=1)  # T x [B, h] -> [B, T, h]


def _reference(cfg, params, x):
  """Layer by layer: forward loop | backward loop (run on the reversed sequence, then
  reversed back), concatenated."""
  cell = recurrent.make_cell(cfg)
  for i in range(cfg.num_layers):
    p = params[f'layer_{i}']
    forward = _cell_loop(cell, p['forward']['cell'], x)
    backward = _cell_loop(cell, p['backward']['cell'], x[:, ::-1])[:, ::-1]
    x = jnp.concatenate([forward, backward], axis=-1)
  return x


@pytest.mark.parametrize('name', BIDIRECTIONAL)
def test_layers_are_forward_and_reversed_backward_passes(name):
  cfg, module, apply = _tiny(name)
  assert cfg.num_layers >= 2  # stacking is exercised
  x = jnp.asarray(_rng(1).standard_normal((B, T, cfg.width)), jnp.float32)
  params = _random_params(module, x, seed=2)
  y = apply(params, x)
  # One compiled program per side: eager dispatch of many small ops is what is slow here.
  ref = jax.jit(lambda p, x: _reference(cfg, p, x))(params['params'], x)
  np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', BIDIRECTIONAL)
def test_sees_the_future(name):
  """Changing only the last input changes the output at position 0."""
  spec = archs.get(name)
  assert spec.causal is False
  cfg, module, apply = _tiny(name)
  rng = _rng(10)
  x = rng.standard_normal((B, T, cfg.width)).astype(np.float32)
  params = _random_params(module, jnp.asarray(x), seed=11)
  y = np.asarray(apply(params, jnp.asarray(x)))
  x2 = x.copy()
  x2[:, -1] = rng.standard_normal(x2[:, -1].shape)
  y2 = np.asarray(apply(params, jnp.asarray(x2)))
  assert y.shape == (B, T, cfg.width)
  assert np.max(np.abs(y2[:, 0] - y[:, 0])) > 1e-4
  # In one layer the change reaches earlier positions through the backward half only (the
  # next layer mixes the halves, so the split shows in a one-layer stack).
  one = spec.build(dataclasses.replace(cfg, num_layers=1))
  p1 = {'params': {'layer_0': params['params']['layer_0']}}
  apply_one = jax.jit(one.apply)
  z, z2 = (np.asarray(apply_one(p1, jnp.asarray(v))) for v in (x, x2))
  h = cfg.hidden
  np.testing.assert_array_equal(z2[:, :-1, :h], z[:, :-1, :h])
  assert np.max(np.abs(z2[:, 0, h:] - z[:, 0, h:])) > 1e-4


def test_width_is_two_halves():
  spec = archs.get('bigru')
  assert spec.width_step == 2 and spec.uses_scan
  cfg = spec.config_for_width(10)
  assert cfg.hidden == 5 and cfg.width == 10
  with pytest.raises(ValueError, match='even'):
    spec.config_for_width(11)
  # The same depth as the causal stacks.
  assert cfg.num_layers == archs.get('gru').config_for_width(10).num_layers


def test_unidirectional_api_unchanged():
  """The causal stack still has its layout, step method and FLOP count."""
  cfg = recurrent.RecurrentConfig(cell=recurrent.CellKind.GRU, hidden=4, num_layers=2)
  assert cfg.width == 4
  shapes = jax.eval_shape(recurrent.Recurrent(cfg).init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 3, 4)))
  assert set(shapes['params']) == {'layer_0', 'layer_1'}
  assert 'cell' in shapes['params']['layer_0']
  carry = recurrent.Recurrent(cfg).initial_carry(1)
  assert len(carry) == 2
  carry, y = jax.eval_shape(functools.partial(recurrent.Recurrent(cfg).apply, method='step'),
                            shapes, carry, jnp.zeros((1, 4)))
  assert len(carry) == 2 and y.shape == (1, 4)
  # Per step and layer: 3 gates x (2*4*4 + 2*4*4 + 2*4) + 5*4 mixing = 236.
  assert recurrent.recurrent_flops(cfg, (3, 4)) == 3 * 2 * 236


# ---------------------------------------------------------------------------------------
# FLOPs: analytic against XLA on a fully unrolled case (XLA counts a scan body once).

def _xla_flops(module, params, x):
  cost = jax.jit(lambda p, x: module.apply(p, x)).lower(params, x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


@pytest.mark.parametrize('name', BIDIRECTIONAL)
def test_analytic_flops_match_xla(name):
  """(tests/test_flops.py checks that unrolling is what makes XLA count every step.)"""
  spec = archs.get(name)
  t = 8
  cfg = dataclasses.replace(spec.config('tiny'), unroll=True)
  module = spec.build(cfg)
  x = jnp.zeros((B, t, cfg.width), jnp.float32)
  params = _random_params(module, x, seed=20)
  xla = _xla_flops(module, params, x)
  ratio = B * spec.flops(cfg, (t, cfg.width)) / xla
  assert abs(ratio - 1) <= 0.10, ratio
