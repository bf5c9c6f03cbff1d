"""Backbones: shapes and dtypes over the whole registry, parameter budgets, recurrent cells
and attention against naive numpy references, scan == step, and causality."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench.archs import decoding, registry, transformer
from archbench.benchmarks.measure import timing
from selection import REPRESENTATIVES, quick_subset  # tests/selection.py

B, T = 2, 6
IMAGE = (8, 8, 1)  # the bundled digits' shape
RECURRENT = ['rnn', 'lstm', 'gru']


def _rng(seed):
  return np.random.default_rng(seed)


def _perturb(params, seed, scale=0.3):
  """The module's own parameter tree, with noise added to every leaf (biases start at zero,
  so without this a reference that forgets a bias would still agree)."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  rng = _rng(seed)
  leaves = [np.asarray(l) + scale * rng.standard_normal(l.shape).astype(np.float32)
            for l in leaves]
  return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(l, jnp.float32) for l in leaves])


# Compiled for compile speed (each runs on a handful of tiny inputs): the timing module's
# XLA options (no backend optimisation), as the harness compiles smoke cells.
_jit = functools.partial(jax.jit, compiler_options=timing.FAST_COMPILE)


def _init(module, *inputs, seed=0):
  return _jit(module.init)(jax.random.PRNGKey(seed), *inputs)


@functools.cache
def _compiled(name, cfg):
  """(module, jitted init, jitted apply) of one architecture at one config, built once for
  the module: the tests below share their compilations (same input shapes, same jitted
  functions) instead of each tracing and compiling its own copy of the model."""
  module = archs.get(name).build(cfg)
  return module, _jit(module.init), _jit(module.apply)


@functools.cache
def _decoder(name, cfg):
  """(jitted init_cache, jitted step) of the architecture's decoding at `cfg`, built once,
  the step taking the variables as an argument (not baked in as constants, which would
  recompile it for every parameter tree)."""
  module, _, _ = _compiled(name, cfg)
  stepwise = decoding.Stepwise(module, archs.get(name).decoding_for(cfg))
  return (_jit(functools.partial(decoding.init_cache, stepwise)),
          _jit(functools.partial(decoding.step, stepwise)))


@functools.cache
def _count(name, width):
  """The backbone's parameter count at `width`, counted (traced) once per width."""
  spec = archs.get(name)
  return registry.count_params(spec, spec.config_for_width(width))


# ---------------------------------------------------------------------------------------
# Shapes and dtypes, parametrised over the registry itself.

def _example(spec, cfg, rng, length=T):
  """Random backbone inputs (a tuple) and the expected output shape, per input kind."""
  if spec.input_kind == 'image':
    return (jnp.asarray(rng.random((B, *IMAGE)), jnp.float32),), (B, cfg.width)
  seq = lambda t: jnp.asarray(rng.standard_normal((B, t, cfg.width)), jnp.float32)
  if spec.input_kind == 'encdec':  # (src [B, S, D], tgt [B, T, D]) -> [B, T, D]
    return (seq(length - 1), seq(length)), (B, length, cfg.width)
  assert spec.input_kind == 'sequence', spec.input_kind
  return (seq(length),), (B, length, cfg.width)


@pytest.mark.parametrize('name', quick_subset(archs.names(),
                                              keep=(*REPRESENTATIVES, 'cnn', 'vit')))
def test_backbone_shape_dtype_finite(name):
  spec = archs.get(name)
  cfg = spec.config('tiny')
  _, init, apply = _compiled(name, cfg)
  inputs, expected = _example(spec, cfg, _rng(1))
  params = init(jax.random.PRNGKey(0), *inputs)
  y = apply(params, *inputs)
  assert y.shape == expected
  assert y.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(y)))
  # Not a constant map: different examples give different outputs.
  assert not np.allclose(np.asarray(y[0]), np.asarray(y[1]))


# ---------------------------------------------------------------------------------------
# Parameter budgets.

@pytest.mark.parametrize('name', archs.names())
@pytest.mark.parametrize('size', list(archs.SIZES))
def test_param_count_within_budget(name, size):
  spec = archs.get(name)
  budget = archs.SIZES[size]
  count = spec.param_count(spec.config(size))
  assert abs(count - budget) <= registry.BUDGET_TOLERANCE * budget, (name, size, count)


@pytest.mark.parametrize('name', archs.names())
@pytest.mark.parametrize('size', list(archs.SIZES))
def test_solve_width_picks_closest(name, size):
  spec = archs.get(name)
  budget = archs.SIZES[size]
  width = registry.solve_width(name, budget)
  assert width % spec.width_step == 0 and width > 0
  # The size's config is the one at the solved width.
  assert spec.config(size) == spec.config_for_width(width)
  count = lambda w: _count(name, w)
  best = abs(count(width) - budget)
  for neighbour in (width - spec.width_step, width + spec.width_step):
    if neighbour > 0:
      assert abs(count(neighbour) - budget) >= best, (name, size, width, neighbour)


def test_param_count_counts_every_leaf():
  """param_count (shape-only) equals the number of scalars in a real initialisation."""
  spec = archs.get('gru')
  cfg = spec.config('tiny')
  _, init, _ = _compiled('gru', cfg)
  params = init(jax.random.PRNGKey(0), jnp.zeros((B, T, cfg.width)))
  real = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
  # Independent count: GRU layer = 3 input kernels + 3 input biases + 3 hidden kernels
  # + 1 hidden bias (hn).
  h = cfg.hidden
  per_layer = 3 * h * h + 3 * h + 3 * h * h + h
  assert real == cfg.num_layers * per_layer == spec.param_count(cfg)


# ---------------------------------------------------------------------------------------
# Recurrent cells against naive numpy loops.

def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _np_layer(cell, p, x):
  """One recurrent layer over x [B, T, D], zero initial state, float64 numpy."""
  p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), p)
  b, t, _ = x.shape
  hdim = (p['h']['kernel'] if cell == 'rnn' else p['hr' if cell == 'gru' else 'hi']['kernel']).shape[0]
  h = np.zeros((b, hdim))
  c = np.zeros((b, hdim))
  out = np.zeros((b, t, hdim))
  for s in range(t):
    xt = x[:, s]
    if cell == 'rnn':  # h' = tanh(x Wi + bi + h Wh)
      h = np.tanh(xt @ p['i']['kernel'] + p['i']['bias'] + h @ p['h']['kernel'])
    elif cell == 'lstm':
      gate = lambda g: xt @ p['i' + g]['kernel'] + h @ p['h' + g]['kernel'] + p['h' + g]['bias']  # noqa: B023
      i, f = _sigmoid(gate('i')), _sigmoid(gate('f'))
      g, o = np.tanh(gate('g')), _sigmoid(gate('o'))
      c = f * c + i * g
      h = o * np.tanh(c)
    else:  # gru
      r = _sigmoid(xt @ p['ir']['kernel'] + p['ir']['bias'] + h @ p['hr']['kernel'])
      z = _sigmoid(xt @ p['iz']['kernel'] + p['iz']['bias'] + h @ p['hz']['kernel'])
      n = np.tanh(xt @ p['in']['kernel'] + p['in']['bias']
                  + r * (h @ p['hn']['kernel'] + p['hn']['bias']))
      h = (1.0 - z) * n + z * h
    out[:, s] = h
  return out


@pytest.mark.parametrize('name', RECURRENT)
def test_recurrent_matches_numpy_loop(name):
  spec = archs.get(name)
  cfg = spec.config('tiny')
  assert cfg.num_layers >= 2  # the reference stacks layers; make sure that is exercised
  _, init, apply = _compiled(name, cfg)
  x = _rng(2).standard_normal((B, T, cfg.width)).astype(np.float32)
  params = _perturb(init(jax.random.PRNGKey(0), jnp.asarray(x)), seed=3)
  y = np.asarray(apply(params, jnp.asarray(x)))
  ref = x.astype(np.float64)
  for i in range(cfg.num_layers):
    ref = _np_layer(name, params['params'][f'layer_{i}']['cell'], ref)
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def _assert_scan_equals_step(spec, cfg, seed):
  """Stepping through the sequence, through the module's own cache path (the cache made
  for T positions), gives the whole-sequence outputs; the step is jitted, as generation
  runs it."""
  _, init, apply = _compiled(spec.name, cfg)
  x = jnp.asarray(_rng(seed).standard_normal((B, T, cfg.width)), jnp.float32)
  params = _perturb(init(jax.random.PRNGKey(0), x), seed=seed + 1)
  scanned = np.asarray(apply(params, x))
  init_cache, step = _decoder(spec.name, cfg)
  variables = {'params': {'backbone': params['params']}}  # where Stepwise holds it
  cache = init_cache(x)
  stepped = []
  for s in range(T):
    cache, y_t = step(variables, cache, x[:, s:s + 1])
    stepped.append(np.asarray(y_t[:, 0]))
  np.testing.assert_allclose(np.stack(stepped, axis=1), scanned, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', [n for n in archs.names() if archs.get(n).decoding])
def test_scan_equals_step(name):
  """Every architecture with token-by-token decoding (the registry's contract), built
  causal where that is a config choice."""
  spec = archs.get(name)
  _assert_scan_equals_step(spec, _causal_config(spec), seed=4)


@pytest.mark.parametrize('name,overrides', [
    ('transformer', {'causal': True, 'positions': transformer.Positions.LEARNED}),
    ('decoder', {'positions': transformer.Positions.LEARNED, 'num_layers': 1}),
    ('tcn', {'weight_norm': True, 'block_channels': (5, None), 'num_blocks': 2}),
    ('tcn', {'kernel_size': 1}),
])
def test_scan_equals_step_variants(name, overrides):
  """The config choices a step has to mirror: a learned position table (row `index`),
  weight-normalised kernels, a 1x1 residual where block widths change, kernel 1."""
  spec = archs.get(name)
  cfg = spec.config('tiny')
  if 'block_channels' in overrides:  # None: the backbone's width, which the last block needs
    overrides = {**overrides, 'block_channels': tuple(
        cfg.width if c is None else c for c in overrides['block_channels'])}
  _assert_scan_equals_step(spec, dataclasses.replace(cfg, **overrides), seed=6)


def test_causal_backbones_declare_decoding():
  """Every built-in backbone that is or can be causal steps token by token (the transformer
  only when built causal); bidirectional and non-sequence ones cannot."""
  for name in archs.names():
    spec = archs.get(name)
    if not spec.module.__module__.startswith('archbench.archs'):
      continue  # a plug-in may leave decoding out; generation then recomputes
    causal_capable = spec.input_kind == 'sequence' and spec.causal is not False
    assert (spec.decoding is not None) == causal_capable, name
  for name in ('rnn', 'lstm', 'gru', 'lru', 'tcn', 'decoder'):
    assert archs.get(name).decoding_for(archs.get(name).config('tiny')) is not None, name
  transformer_spec = archs.get('transformer')
  cfg = transformer_spec.config('tiny')
  assert transformer_spec.decoding_for(cfg) is None  # bidirectional by default
  assert transformer_spec.decoding_for(dataclasses.replace(cfg, causal=True)) is not None
  with pytest.raises(ValueError, match='causal'):
    decoding.init_cache(decoding.Stepwise(transformer_spec.build(cfg), transformer_spec.decoding),
                        jnp.zeros((B, T, cfg.width)))
  for name in ('birnn', 'bilstm', 'bigru'):
    assert archs.get(name).decoding is None, name


def test_register_checks_the_declared_decoding(monkeypatch):
  """A capability is one of Decoding's (a plain string names one), and only a causal
  sequence backbone may declare it."""
  lstm, bilstm = archs.get('lstm'), archs.get('bilstm')
  monkeypatch.setattr(registry, '_REGISTRY', {})
  spec = registry.register(dataclasses.replace(lstm, name='mine', decoding='step'))
  assert spec.decoding is decoding.Decoding.STEP and archs.get('mine') is spec
  with pytest.raises(ValueError, match='decoding must be one of cache, step'):
    registry.register(dataclasses.replace(lstm, name='bogus', decoding='scan'))
  with pytest.raises(ValueError, match='causal sequence'):
    registry.register(dataclasses.replace(bilstm, name='bi', decoding=decoding.Decoding.STEP))


@pytest.mark.parametrize('name', archs.names())
def test_depth_fields_set_the_depth(name):
  """`depth_fields` (what a suite's `depth` sets) name real fields, and setting them
  changes the parameter count: they are the depth, not a stray field."""
  spec = archs.get(name)
  cfg = spec.config('tiny')
  overrides = spec.depth_overrides(1)
  assert set(overrides) == set(spec.depth_fields)
  if overrides:
    shallow = dataclasses.replace(cfg, **overrides)
    deep = dataclasses.replace(cfg, **spec.depth_overrides(3))
    assert spec.param_count(shallow) < spec.param_count(deep)


# ---------------------------------------------------------------------------------------
# Causality.

def _causal_config(spec):
  cfg = spec.config('tiny')
  if spec.causal is None:
    cfg = dataclasses.replace(cfg, causal=True)
  return cfg


def _check_causal(spec, cfg, seed):
  """Changing (target-side) inputs after t leaves outputs <= t alone and changes some
  output after t. Encoder-decoders are checked on the target; the source is all visible."""
  _, init, apply = _compiled(spec.name, cfg)
  rng = _rng(seed)
  length = T  # the shapes the other tests compiled for; t = 0, 3, 4 below
  inputs, _ = _example(spec, cfg, rng, length)
  inputs = [np.asarray(a) for a in inputs]
  params = _perturb(init(jax.random.PRNGKey(0), *map(jnp.asarray, inputs)), seed=seed + 1,
                    scale=0.1)
  y = np.asarray(apply(params, *map(jnp.asarray, inputs)))
  for t in (0, 3, length - 2):
    changed = [a.copy() for a in inputs]
    x2 = changed[-1]  # the sequence, or the target of an encoder-decoder
    x2[:, t + 1:] = rng.standard_normal(x2[:, t + 1:].shape)
    y2 = np.asarray(apply(params, *map(jnp.asarray, changed)))
    np.testing.assert_allclose(y2[:, :t + 1], y[:, :t + 1], rtol=0, atol=1e-6)
    assert np.max(np.abs(y2[:, t + 1:] - y[:, t + 1:])) > 1e-4


@pytest.mark.parametrize(
    'name', [n for n in archs.names()
             if archs.get(n).input_kind != 'image' and archs.get(n).causal is not False])
def test_causal_archs_are_causal(name):
  """Every sequence arch that is causal (or can be made causal) passes the check."""
  spec = archs.get(name)
  _check_causal(spec, _causal_config(spec), seed=10)


def test_causal_transformer_is_causal():
  spec = archs.get('transformer')
  cfg = dataclasses.replace(spec.config('tiny'), causal=True)
  _check_causal(spec, cfg, seed=20)


def test_bidirectional_transformer_sees_the_future():
  spec = archs.get('transformer')
  cfg = spec.config('tiny')
  assert cfg.causal is False
  _, init, apply = _compiled('transformer', cfg)
  x = _rng(30).standard_normal((B, T, cfg.width)).astype(np.float32)
  params = init(jax.random.PRNGKey(0), jnp.asarray(x))
  y = apply(params, jnp.asarray(x))
  x2 = x.copy()
  # A fresh random vector (a constant shift would be removed by the LayerNorm).
  x2[:, -1] = _rng(31).standard_normal(x2[:, -1].shape)
  y2 = np.asarray(apply(params, jnp.asarray(x2)))
  assert np.max(np.abs(y2[:, 0] - np.asarray(y)[:, 0])) > 1e-4


# ---------------------------------------------------------------------------------------
# Attention against an explicit softmax(QK^T / sqrt(d_head)) V.

def _np_attention(p, x, heads, causal):
  p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), p)
  x = x.astype(np.float64)
  b, t, d = x.shape
  dh = d // heads
  qkv = x @ p['qkv']['kernel'] + p['qkv']['bias']  # [B, T, 3D]: q | k | v, heads contiguous
  q, k, v = (qkv[..., i * d:(i + 1) * d].reshape(b, t, heads, dh) for i in range(3))
  scores = np.einsum('bqnh,bknh->bnqk', q, k) / np.sqrt(dh)
  if causal:
    scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
  scores -= scores.max(-1, keepdims=True)
  w = np.exp(scores)
  w /= w.sum(-1, keepdims=True)
  y = np.einsum('bnqk,bknh->bqnh', w, v).reshape(b, t, d)
  return y @ p['out']['kernel'] + p['out']['bias']


@pytest.mark.parametrize('causal', [False, True])
def test_self_attention_matches_numpy(causal):
  heads, d, t = 4, 16, 7
  module = transformer.Attention(num_heads=heads, causal=causal)
  x = _rng(40 + causal).standard_normal((B, t, d)).astype(np.float32)
  params = _perturb(_init(module, jnp.asarray(x)), seed=41)
  y = np.asarray(_jit(module.apply)(params, jnp.asarray(x)))
  ref = _np_attention(params['params'], x, heads, causal)
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
  # And the mask matters: the other variant's reference disagrees.
  other = _np_attention(params['params'], x, heads, not causal)
  assert np.max(np.abs(other - y)) > 1e-3
