"""Attention-family backbones (decoder, ViT, encoder-decoder) and the shared attention
module: naive numpy references, causality, dependence on every source token, patch
embedding, analytic FLOPs against XLA, and parameter budgets."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench.archs import decoder, encdec, transformer, vit

B = 2
FAMILY = ['decoder', 'vit', 'encdec']


def _rng(seed):
  return np.random.default_rng(seed)


def _perturbed_init(module, *inputs, seed=0, scale=0.2):
  """Initialised parameters plus noise on every leaf, so zero-initialised biases and unit
  LayerNorm scales are exercised too (a reference that forgot one would still agree)."""
  params = jax.jit(module.init)(jax.random.PRNGKey(seed), *inputs)
  rng = _rng(seed + 1000)
  return jax.tree_util.tree_map(
      lambda a: a + scale * jnp.asarray(rng.standard_normal(a.shape), a.dtype), params)


# ---------------------------------------------------------------------------------------
# Attention against explicit softmax(Q K^T / sqrt(d_head)) V, in float64 numpy.

def _dense(p, x):
  return x @ np.asarray(p['kernel'], np.float64) + np.asarray(p['bias'], np.float64)


def _split_heads(a, heads):
  b, t, d = a.shape
  return a.reshape(b, t, heads, d // heads)  # [B, T, N, D/N]


def _np_softmax_attention(q, k, v, causal):
  """q [B, T, N, H], k and v [B, S, N, H] -> [B, T, N*H]."""
  b, t, n, h = q.shape
  scores = np.einsum('btnh,bsnh->bnts', q, k) / np.sqrt(h)
  if causal:
    allowed = np.arange(t)[:, None] >= np.arange(k.shape[1])[None, :]
    scores = np.where(allowed, scores, -np.inf)
  weights = np.exp(scores - scores.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  return np.einsum('bnts,bsnh->btnh', weights, v).reshape(b, t, n * h)


def _np_self_attention(p, x, heads, causal):
  d = x.shape[-1]
  qkv = _dense(p['qkv'], x)  # [B, T, 3D] laid out as q | k | v
  q, k, v = (_split_heads(qkv[..., i * d:(i + 1) * d], heads) for i in range(3))
  return _dense(p['out'], _np_softmax_attention(q, k, v, causal))


def _np_cross_attention(p, x, context, heads):
  d = x.shape[-1]
  kv = _dense(p['kv'], context)  # [B, S, 2D] laid out as k | v
  q = _split_heads(_dense(p['q'], x), heads)
  k, v = _split_heads(kv[..., :d], heads), _split_heads(kv[..., d:], heads)
  return _dense(p['out'], _np_softmax_attention(q, k, v, causal=False))


@pytest.mark.parametrize('causal', [False, True])
def test_self_attention_matches_numpy(causal):
  heads, t, d = 4, 6, 16
  module = transformer.Attention(num_heads=heads, causal=causal)
  x = _rng(1 + causal).standard_normal((B, t, d)).astype(np.float32)
  params = _perturbed_init(module, jnp.asarray(x), seed=2)
  y = np.asarray(module.apply(params, jnp.asarray(x)))
  p = params['params']
  assert set(p) == {'qkv', 'out'}
  x64 = x.astype(np.float64)
  np.testing.assert_allclose(y, _np_self_attention(p, x64, heads, causal), rtol=1e-4,
                             atol=1e-4)
  # The mask matters: the other variant's reference disagrees.
  assert np.max(np.abs(y - _np_self_attention(p, x64, heads, not causal))) > 1e-3


def test_cross_attention_matches_numpy():
  heads, t, s, d, d_context = 2, 5, 7, 8, 12
  module = transformer.Attention(num_heads=heads)
  rng = _rng(3)
  x = rng.standard_normal((B, t, d)).astype(np.float32)
  context = rng.standard_normal((B, s, d_context)).astype(np.float32)
  params = _perturbed_init(module, jnp.asarray(x), jnp.asarray(context), seed=4)
  y = np.asarray(module.apply(params, jnp.asarray(x), jnp.asarray(context)))
  p = params['params']
  assert set(p) == {'q', 'kv', 'out'}
  assert y.shape == (B, t, d)
  ref = _np_cross_attention(p, x.astype(np.float64), context.astype(np.float64), heads)
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_attention_rejects_causal_cross_and_bad_heads():
  x = jnp.zeros((1, 3, 8))
  with pytest.raises(ValueError, match='cross-attention cannot be causal'):
    transformer.Attention(num_heads=2, causal=True).init(jax.random.PRNGKey(0), x, x)
  with pytest.raises(ValueError, match='divisible'):
    transformer.Attention(num_heads=3).init(jax.random.PRNGKey(0), x)


# ---------------------------------------------------------------------------------------
# Causality and dependence.

def _max_change(a, b):
  return np.max(np.abs(np.asarray(a) - np.asarray(b)), axis=(0, 2))  # per position


def test_decoder_is_causal():
  cfg = decoder.DecoderConfig(d_model=16, num_layers=2, num_heads=4)
  module = decoder.Decoder(cfg)
  t = 6
  rng = _rng(10)
  x = rng.standard_normal((B, t, cfg.width)).astype(np.float32)
  params = _perturbed_init(module, jnp.asarray(x), seed=11, scale=0.1)
  apply = jax.jit(module.apply)
  y = apply(params, jnp.asarray(x))
  for cut in range(t - 1):
    x2 = x.copy()
    x2[:, cut + 1:] = rng.standard_normal(x2[:, cut + 1:].shape)  # fresh future inputs
    change = _max_change(apply(params, jnp.asarray(x2)), y)
    assert np.all(change[:cut + 1] <= 1e-6), (cut, change)
    assert np.all(change[cut + 1:] > 1e-4), (cut, change)


@pytest.fixture(scope='module')
def encdec_case():
  cfg = encdec.EncDecConfig(d_model=16, num_heads=2, encoder_layers=2, decoder_layers=2)
  module = encdec.EncDec(cfg)
  s, t = 5, 6
  rng = _rng(20)
  src = rng.standard_normal((B, s, cfg.width)).astype(np.float32)
  tgt = rng.standard_normal((B, t, cfg.width)).astype(np.float32)
  params = _perturbed_init(module, jnp.asarray(src), jnp.asarray(tgt), seed=21, scale=0.1)
  apply = jax.jit(module.apply)
  return apply, params, src, tgt, apply(params, jnp.asarray(src), jnp.asarray(tgt)), rng


def test_encdec_decoder_is_causal_over_target(encdec_case):
  apply, params, src, tgt, y, rng = encdec_case
  assert y.shape == tgt.shape
  t = tgt.shape[1]
  for cut in range(t - 1):
    tgt2 = tgt.copy()
    tgt2[:, cut + 1:] = rng.standard_normal(tgt2[:, cut + 1:].shape)
    change = _max_change(apply(params, jnp.asarray(src), jnp.asarray(tgt2)), y)
    assert np.all(change[:cut + 1] <= 1e-6), (cut, change)
    assert np.all(change[cut + 1:] > 1e-4), (cut, change)


def test_encdec_every_target_position_sees_every_source_token(encdec_case):
  apply, params, src, tgt, y, rng = encdec_case
  for s in range(src.shape[1]):
    src2 = src.copy()
    src2[:, s] = rng.standard_normal(src2[:, s].shape)  # one source position only
    change = _max_change(apply(params, jnp.asarray(src2), jnp.asarray(tgt)), y)
    assert np.all(change > 1e-4), (s, change)


# ---------------------------------------------------------------------------------------
# ViT.

def test_patch_embedding_matches_numpy_reshape_matmul():
  p, d = 2, 8
  h, w, c = 4, 6, 3  # non-square with several channels, so the patch order is pinned
  module = vit.PatchEmbed(patch_size=p, width=d)
  x = _rng(30).standard_normal((B, h, w, c)).astype(np.float32)
  params = _perturbed_init(module, jnp.asarray(x), seed=31)
  y = np.asarray(module.apply(params, jnp.asarray(x)))
  kernel = np.asarray(params['params']['proj']['kernel'], np.float64)  # [p, p, C, D]
  bias = np.asarray(params['params']['proj']['bias'], np.float64)
  # Patch (i, j) in row-major order, its pixels flattened as (dy, dx, c).
  patches = np.stack([x[:, i:i + p, j:j + p, :].reshape(B, p * p * c)
                      for i in range(0, h, p) for j in range(0, w, p)], axis=1)
  ref = patches.astype(np.float64) @ kernel.reshape(p * p * c, d) + bias
  assert y.shape == (B, (h // p) * (w // p), d)
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_vit_output_shape_and_parameters():
  spec = archs.get('vit')
  cfg = spec.config('tiny')
  module = spec.build(cfg)
  x = jnp.asarray(_rng(32).random((B, 8, 8, 1)), jnp.float32)
  params = jax.jit(module.init)(jax.random.PRNGKey(0), x)
  y = np.asarray(jax.jit(module.apply)(params, x))
  assert y.shape == (B, cfg.width) and np.all(np.isfinite(y))
  assert not np.allclose(y[0], y[1])
  p = params['params']
  assert p['cls'].shape == (1, 1, cfg.width)
  n = (8 // cfg.patch_size) ** 2
  assert p['encoder']['positions'].shape == (n + 1, cfg.width)  # [CLS] + patches


def test_vit_rejects_patch_size_that_does_not_divide_the_image():
  cfg = vit.ViTConfig(d_model=8, num_heads=2, num_layers=1, patch_size=3)
  x = jnp.zeros((1, 8, 8, 1))
  with pytest.raises(ValueError, match='patch_size=3 must divide'):
    vit.ViT(cfg).init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match='patch_size=3 must divide'):
    vit.vit_flops(cfg, (8, 8, 1))


# ---------------------------------------------------------------------------------------
# Analytic FLOPs against XLA, and parameter budgets.

def _case_inputs(spec, cfg):
  """(inputs, flops shape): T=8 sequence, S=6/T=8 encdec, 8x8x1 image; batch B."""
  if spec.input_kind == 'image':
    shape = (8, 8, 1)
    return (jnp.zeros((B, *shape)),), shape
  if spec.input_kind == 'encdec':
    s, t = 6, 8
    return (jnp.zeros((B, s, cfg.width)), jnp.zeros((B, t, cfg.width))), (s, t, cfg.width)
  return (jnp.zeros((B, 8, cfg.width)),), (8, cfg.width)


@pytest.mark.parametrize('name', FAMILY)
def test_analytic_flops_match_xla(name):
  spec = archs.get(name)
  cfg = spec.config('tiny')
  module = spec.build(cfg)
  inputs, shape = _case_inputs(spec, cfg)
  params = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)
  params = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), params)
  cost = jax.jit(lambda p, *xs: module.apply(p, *xs)).lower(params, *inputs).compile()
  cost = cost.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  ratio = B * spec.flops(cfg, shape) / float(cost['flops'])
  assert abs(ratio - 1) <= 0.10, f'{name}: analytic/XLA = {ratio:.3f}'


@pytest.mark.parametrize('name', FAMILY)
@pytest.mark.parametrize('size', list(archs.SIZES))
def test_param_count_within_budget(name, size):
  spec = archs.get(name)
  cfg = spec.config(size)
  assert cfg.width % cfg.num_heads == 0
  budget = archs.SIZES[size]
  count = spec.param_count(cfg)
  assert abs(count - budget) <= archs.registry.BUDGET_TOLERANCE * budget, (size, count)


def test_registrations():
  for name, kind, causal in [('decoder', 'sequence', True), ('vit', 'image', False),
                             ('encdec', 'encdec', True)]:
    spec = archs.get(name)
    assert (spec.family, spec.input_kind, spec.causal) == ('attention', kind, causal)
