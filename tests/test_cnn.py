"""The CNN's hand-written pieces against JAX's own: the convolution's custom backward pass
against autodiff of `lax.conv_general_dilated`, the reshape max pool against `nn.max_pool`."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench.archs import cnn


def _reference_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@pytest.mark.parametrize('k', [1, 2, 3, 4, 5])
@pytest.mark.parametrize('shape', [(2, 7, 6, 3), (1, 8, 8, 1)])
def test_conv_same_value_and_gradients_equal_autodiff(k, shape):
  keys = jax.random.split(jax.random.PRNGKey(k), 3)
  x = jax.random.normal(keys[0], shape)
  kernel = jax.random.normal(keys[1], (k, k, shape[-1], 4))
  cotangent = jax.random.normal(keys[2], shape[:-1] + (4,))
  loss = lambda conv: lambda x, w: jnp.sum(conv(x, w) * cotangent)
  # Each side jitted whole: one compilation, not one per operation and shape.
  np.testing.assert_allclose(jax.jit(cnn.conv_same)(x, kernel),
                             jax.jit(_reference_conv)(x, kernel), atol=1e-5)
  ours = jax.jit(jax.grad(loss(cnn.conv_same), (0, 1)))(x, kernel)
  ref = jax.jit(jax.grad(loss(_reference_conv), (0, 1)))(x, kernel)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_conv_module_has_nn_conv_parameters():
  x = jnp.ones((2, 5, 5, 3))
  ours = cnn.Conv(8, (3, 3)).init(jax.random.PRNGKey(0), x)
  theirs = nn.Conv(8, (3, 3), padding='SAME').init(jax.random.PRNGKey(0), x)
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(
      lambda a, b: a.shape == b.shape and bool((a == b).all()), ours, theirs))


@pytest.mark.parametrize('shape', [(2, 8, 6, 3), (2, 7, 5, 3), (1, 1, 1, 2)])
def test_max_pool_2x2_equals_nn_max_pool(shape):
  """Values and gradients (continuous random inputs: no ties)."""
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')
  np.testing.assert_array_equal(cnn.max_pool_2x2(x), ref(x))
  cotangent = jax.random.normal(jax.random.PRNGKey(1), ref(x).shape)
  grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * cotangent))(x)
  np.testing.assert_array_equal(grad(cnn.max_pool_2x2), grad(ref))


@pytest.mark.slow  # two compilations; the pooling claim's control, not the quick loop's
def test_cnn_without_pooling_has_the_same_parameters_and_counts_its_flops():
  """`pool=False` (the pooling claim's control): every stage at full resolution, the same
  parameters as with pooling, more FLOPs, and the analytic count still XLA's."""
  from archbench import archs
  from archbench.benchmarks.measure import timing
  spec = archs.get('cnn')
  pooled = spec.config('tiny')
  unpooled = dataclasses.replace(pooled, pool=False)
  x = jnp.zeros((4, 8, 8, 1), jnp.float32)
  params = {}
  for cfg in (pooled, unpooled):
    module = spec.build(cfg)
    params[cfg.pool] = module.init(jax.random.PRNGKey(0), x)
    assert module.apply(params[cfg.pool], x).shape == (4, cfg.width)
  assert jax.tree_util.tree_map(jnp.shape, params[True]) == jax.tree_util.tree_map(
      jnp.shape, params[False])
  assert spec.param_count(unpooled) == spec.param_count(pooled)
  assert spec.flops(unpooled, (8, 8, 1)) > 2 * spec.flops(pooled, (8, 8, 1))
  module = spec.build(unpooled)
  cost = jax.jit(lambda p, v: module.apply(p, v)).lower(params[False], x).compile(
      timing.FAST_COMPILE).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  assert abs(4 * spec.flops(unpooled, (8, 8, 1)) / float(cost['flops']) - 1) <= 0.10
