"""The Transformer's positional encodings (archs/transformer.py `Positions`): each keeps the
padding contract and causality; each is checked against a naive reference or the property
that defines it (from-end rows, RoPE's relative scores, ALiBi's biases, no positions'
permutation equivariance)."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench.archs import transformer
from archbench.archs.transformer import Positions

B, T, PAD, D, HEADS = 2, 6, 3, 16, 2
ALL = list(Positions)
# A learned table has exactly the rows of the length it was built for, so a learned model
# cannot take the same batch padded to another length at all; the rest take any length.
ANY_LENGTH = [p for p in Positions if p != Positions.LEARNED]


@functools.lru_cache(maxsize=None)
def _model(positions: Positions, causal: bool = False, num_layers: int = 2):
  """(module, params, jitted apply) of a small stack, built at length T."""
  cfg = transformer.TransformerConfig(d_model=D, num_layers=num_layers, num_heads=HEADS,
                                      mlp_ratio=2, causal=causal, positions=positions)
  module = transformer.Transformer(cfg)
  params = module.init(jax.random.PRNGKey(0), jnp.zeros((B, T, D)))
  apply = jax.jit(lambda p, x, mask: module.apply(p, x, mask=mask))
  return module, params, apply


def _inputs(seed=1, t=T):
  return jax.random.normal(jax.random.PRNGKey(seed), (B, t, D))


def test_enum_values():
  assert [p.value for p in Positions] == [
      'sinusoidal', 'learned', 'none', 'sinusoidal_from_end', 'rope', 'alibi']
  assert transformer.TransformerConfig().positions == Positions.SINUSOIDAL


# The bidirectional stack is where padding could leak; the causal one with the whole suite.
@pytest.mark.parametrize('causal', [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize('positions', ANY_LENGTH)
def test_outputs_at_real_positions_ignore_extra_padding(positions, causal):
  """Example 0 is T long, example 1 is 4 long (padded within T); padding both further by
  PAD junk positions leaves every real position's output unchanged."""
  _, params, apply = _model(positions, causal)
  x = _inputs()
  mask = jnp.arange(T)[None, :] < jnp.array([T, 4])[:, None]  # [B, T]
  junk = 10.0 * jax.random.normal(jax.random.PRNGKey(7), (B, PAD, D))
  padded = jnp.concatenate([x, junk], axis=1)
  padded_mask = jnp.concatenate([mask, jnp.zeros((B, PAD), bool)], axis=1)
  plain = np.asarray(apply(params, x, mask))
  longer = np.asarray(apply(params, padded, padded_mask))[:, :T]
  real = np.asarray(mask)
  np.testing.assert_allclose(longer[real], plain[real], rtol=1e-5, atol=1e-5,
                             err_msg=f'{positions.value}: extra padding moved the outputs')


@pytest.mark.parametrize('positions', ALL)
def test_causal_stack_stays_causal(positions):
  """Changing input 4 changes output 4 but never outputs 0..3."""
  _, params, apply = _model(positions, True)
  x = _inputs()
  changed = x.at[:, 4].set(_inputs(seed=9)[:, 4])
  before, after = (np.asarray(apply(params, z, None)) for z in (x, changed))
  np.testing.assert_allclose(after[:, :4], before[:, :4], rtol=1e-6, atol=1e-6)
  assert np.abs(after[:, 4] - before[:, 4]).max() > 1e-3


def test_no_positions_is_permutation_equivariant():
  """Bidirectional and without positions, permuting the inputs permutes the outputs; with
  sinusoidal positions it does not (so the check can fail)."""
  x = _inputs()
  perm = np.array([3, 0, 5, 1, 4, 2])
  for positions, equivariant in ((Positions.NONE, True), (Positions.SINUSOIDAL, False)):
    _, params, apply = _model(positions)
    y = np.asarray(apply(params, x, None))
    y_perm = np.asarray(apply(params, x[:, perm], None))
    assert np.allclose(y_perm, y[:, perm], rtol=1e-5, atol=1e-5) == equivariant, positions


def test_sinusoid_rows_match_the_table():
  np.testing.assert_allclose(np.asarray(transformer.sinusoid(jnp.arange(9), D)),
                             transformer.sinusoidal_positions(9, D), rtol=1e-5, atol=1e-5)


def test_from_end_positions_count_back_to_one():
  """As the authors' `arange(T, 0, -1)`, per example: the last real position is 1."""
  np.testing.assert_array_equal(transformer.positions_from_end(jnp.array([T]), T)[0],
                                np.arange(T, 0, -1))
  np.testing.assert_array_equal(transformer.positions_from_end(jnp.array([3]), 5)[0],
                                [3, 2, 1, 0, -1])


def test_from_end_gives_the_last_real_position_one_vector_at_every_length():
  """With no layers the stack is LayerNorm(x + positions): at x = 0 the output at each
  example's last real position is the same vector at every length and padding; start-
  counted sinusoidal positions differ there (so the check can fail)."""
  x = jnp.zeros((B, T + PAD, D))
  lengths = jnp.array([T + PAD, 2])
  outputs = {}
  for positions in (Positions.SINUSOIDAL_FROM_END, Positions.SINUSOIDAL):
    _, params, apply = _model(positions, num_layers=0)
    rows = []
    for t in (T, T + PAD):
      mask = jnp.arange(t)[None, :] < jnp.minimum(lengths, t)[:, None]
      y = np.asarray(apply(params, x[:, :t], mask))
      ends = np.asarray(mask.sum(-1)) - 1
      rows += [y[b, ends[b]] for b in range(B)]
    outputs[positions] = rows
  for row in outputs[Positions.SINUSOIDAL_FROM_END][1:]:
    np.testing.assert_allclose(row, outputs[Positions.SINUSOIDAL_FROM_END][0], atol=1e-5)
  first = outputs[Positions.SINUSOIDAL][0]
  assert any(not np.allclose(row, first, atol=1e-3)
             for row in outputs[Positions.SINUSOIDAL][1:])


def _naive_rope(x, pos, base=10_000.0):
  """x [B, T, N, H]: each pair (2i, 2i+1) at position p times the 2x2 rotation by
  p * base^(-2i/H), one pair at a time; an odd H's last feature is left as it is."""
  x = np.asarray(x, np.float64)
  out = x.copy()
  h = x.shape[-1] - x.shape[-1] % 2
  for t, p in enumerate(pos):
    for i in range(h // 2):
      theta = p * base ** (-2 * i / h)
      rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
      out[:, t, :, 2 * i:2 * i + 2] = x[:, t, :, 2 * i:2 * i + 2] @ rot.T
  return out


@pytest.mark.parametrize('head_width', [8, 7])
def test_rope_matches_a_naive_rotation_and_scores_depend_on_offsets_only(head_width):
  q, k = (jax.random.normal(jax.random.PRNGKey(s), (1, 5, HEADS, head_width)) for s in (2, 3))
  pos = np.arange(5)
  np.testing.assert_allclose(np.asarray(transformer.rope(q, pos)), _naive_rope(q, pos),
                             rtol=1e-5, atol=1e-5)
  scores = lambda shift: np.einsum('btnh,bsnh->bnts', transformer.rope(q, pos + shift),
                                   transformer.rope(k, pos + shift))
  np.testing.assert_allclose(scores(11), scores(0), rtol=1e-4, atol=1e-4)
  plain = np.einsum('btnh,bsnh->bnts', q, k)
  assert np.abs(scores(0) - plain).max() > 1e-2  # the rotation does act


def _naive_alibi(num_heads, t, causal):
  slopes = {2: [2 ** -4, 2 ** -8], 4: [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8],
            6: [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]}[num_heads]
  bias = np.zeros((num_heads, t, t))
  for h, m in enumerate(slopes):
    for i in range(t):
      for j in range(t):
        bias[h, i, j] = -m * abs(i - j) + (0.5 * m if j < i and not causal else 0.0)
  return bias


@pytest.mark.parametrize('num_heads', [2, 4, 6])
@pytest.mark.parametrize('causal', [False, True])
def test_alibi_bias_matches_a_naive_reference(num_heads, causal):
  np.testing.assert_allclose(
      np.asarray(transformer.alibi_bias(num_heads, jnp.arange(5), jnp.arange(5), causal)),
      _naive_alibi(num_heads, 5, causal), rtol=1e-6, atol=1e-7)


def test_attend_adds_the_bias_to_the_scores():
  q, k, v = (jax.random.normal(jax.random.PRNGKey(s), (B, 5, HEADS, 8)) for s in (4, 5, 6))
  bias = transformer.alibi_bias(HEADS, jnp.arange(5), jnp.arange(5), False)
  scores = np.einsum('btnh,bsnh->bnts', q, k) / np.sqrt(8) + np.asarray(bias)[None]
  weights = np.exp(scores - scores.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  expected = np.einsum('bnts,bsnh->btnh', weights, v)
  np.testing.assert_allclose(np.asarray(transformer.attend(q, k, v, bias=bias)), expected,
                             rtol=1e-5, atol=1e-5)


def test_only_learned_positions_have_parameters():
  count = lambda p: sum(a.size for a in jax.tree_util.tree_leaves(p))
  base = count(_model(Positions.SINUSOIDAL)[1])
  for positions in ALL:
    extra = T * D if positions == Positions.LEARNED else 0
    assert count(_model(positions)[1]) == base + extra, positions


@pytest.mark.parametrize('positions', [Positions.NONE, Positions.ROPE, Positions.ALIBI])
def test_token_by_token_decoding_equals_the_whole_sequence(positions):
  module, params, apply = _model(positions, True)
  x = _inputs(seed=8)
  whole = np.asarray(apply(params, x, None))
  _, cache = module.apply(params, x, decode=True, mutable=['cache'])
  step = jax.jit(lambda c, x_t: module.apply({**params, **c}, x_t, decode=True,
                                             mutable=['cache']))
  stepped = []
  for s in range(T):
    y_t, cache = step(cache, x[:, s:s + 1])
    stepped.append(np.asarray(y_t[:, 0]))
  np.testing.assert_allclose(np.stack(stepped, 1), whole, rtol=1e-5, atol=1e-5)


def test_from_end_refuses_to_decode_and_says_so_before_anyone_asks():
  """The module refuses a decode call; the registry gives such a config no decoding, so
  text generation reruns the whole model instead of failing."""
  module, params, _ = _model(Positions.SINUSOIDAL_FROM_END, True)
  with pytest.raises(ValueError, match='sinusoidal_from_end'):
    module.apply(params, _inputs(), decode=True, mutable=['cache'])
  for name in ('transformer', 'decoder'):
    arch = archs.get(name)
    config = dataclasses.replace(arch.config('tiny'), positions=Positions.SINUSOIDAL_FROM_END,
                                 **({'causal': True} if name == 'transformer' else {}))
    assert arch.decoding_for(config) is None
    assert arch.decoding_for(dataclasses.replace(config, positions=Positions.ROPE))


@pytest.mark.parametrize('positions', ALL)
def test_analytic_flops_match_xla(positions):
  cfg = dataclasses.replace(_model(positions)[0].config)
  module, params, _ = _model(positions)
  x, mask = _inputs(), jnp.ones((B, T), bool)
  cost = jax.jit(lambda p, x, m: module.apply(p, x, mask=m)).lower(params, x, mask).compile(
      ).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  analytic = B * transformer.transformer_flops(cfg, (T, D))
  assert abs(analytic / float(cost['flops']) - 1) <= 0.10, positions
