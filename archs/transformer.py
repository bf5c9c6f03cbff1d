"""Transformer encoder (pre-LN), bidirectional or causal.

Attention goes through `jax.nn.dot_product_attention`, so a GPU takes the fused cuDNN path
when one is present and the CPU takes XLA's. The attention and block modules here are the
building blocks for every attention-family backbone.

Precision: every module takes `dtype` (computation) and `param_dtype` (parameters). In
bfloat16 the projections, the MLP and the residual stream are bf16, while the attention
scores, their mask and the softmax run in float32, as do LayerNorm's mean and variance
(Flax's default): with bf16's 8 significant bits a softmax's normaliser, summed over
hundreds of keys, and the small weights it divides would be rounded coarsely.

Dropout (training only, `train=True`; both rates default to 0, which adds nothing): `dropout`
is Vaswani et al.'s residual dropout (section 5.4), on each sublayer's output before it is
added to the residual stream and on the sum of the embeddings and positions;
`attention_dropout` drops attention weights after the softmax, as tensor2tensor, BERT and
Long Range Arena (`attention_dropout_rate`) add. The fused attention kernels have no
dropout, so with `attention_dropout` > 0 training takes the explicit path on every backend.

Positions (`TransformerConfig.positions`, typed as `--config.arch.positions=<value>`):

* `sinusoidal` (the default): Vaswani et al.'s fixed sin/cos table, counted from the start
  (position 0 is the first token); added to the input, no parameters.
* `learned`: one trained vector per position, sized by the input length at init (T x D
  parameters, so it is off the equal-budget default and has no row past that length).
* `none`: no positional information; a bidirectional stack is then permutation-equivariant.
* `sinusoidal_from_end`: the same sin/cos frequencies, indexed by the distance from each
  example's last *real* position (the last is 1, the one before it 2, ...), as the Chomsky
  hierarchy authors' code does (`sinusoid_position_encoding(..., causal=True)`, their
  SIN_COS default). Per-example lengths come from `mask`, so padding never moves them.
* `rope`: rotary embeddings (Su et al. 2021) on the queries and keys of self-attention,
  base 10000, positions 0..T-1; no table is added to the input.
* `alibi`: linear biases (Press et al. 2022) added to the self-attention scores,
  -m_h |i - j|, with the official slopes (2^(-8h/N), h = 1..N, for N a power of two).
  Bidirectional attention adds +m_h/2 to keys left of the query (j < i), as the Chomsky
  authors' code does to tell left from right; causal attention needs no such term.

Delétang et al. 2023 ("Neural Networks and the Chomsky Hierarchy") train the Transformer
with each of five encodings (none, sin/cos, relative, RoPE, ALiBi) and report the best per
task; their sin/cos counts from the end, so the last token always sits at the same
position whatever the length. Transformer-XL's relative encoding is the one left out here.
Only `learned` has parameters, so the others keep the parameter count (and budgets) equal.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from archbench.archs import registry


class Positions(str, enum.Enum):
  """Where a Transformer's positional information comes from (module docstring)."""
  SINUSOIDAL = 'sinusoidal'  # fixed (Vaswani et al. 2017), counted from the start
  LEARNED = 'learned'        # one vector per position, sized by the input length
  NONE = 'none'              # no positions at all
  SINUSOIDAL_FROM_END = 'sinusoidal_from_end'  # sin/cos by distance from the real end
  ROPE = 'rope'              # rotary queries and keys in self-attention (Su et al.)
  ALIBI = 'alibi'            # linear distance biases on self-attention scores (Press et al.)


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """A stack of `num_layers` pre-LN blocks of width `d_model`; `causal` masks the future."""
  d_model: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  causal: bool = False
  positions: Positions = Positions.SINUSOIDAL
  # Training-time dropout rates (see the module docstring); 0 leaves the model unchanged.
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @property
  def width(self) -> int:
    return self.d_model

  @property
  def decodes(self) -> bool:
    """Whether a causal stack can decode token by token: not with positions counted from
    the end, which move every earlier position with each new token."""
    return Positions(self.positions) != Positions.SINUSOIDAL_FROM_END


def sinusoidal_positions(length: int, d: int) -> np.ndarray:
  """[T, D] table of sin/cos at geometric frequencies."""
  pos = np.arange(length)[:, None]
  freq = np.exp(-np.log(10_000.0) * (np.arange(0, d, 2) / d))
  table = np.zeros((length, d), np.float32)
  table[:, 0::2] = np.sin(pos * freq)
  table[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
  return table


def sinusoid(pos, d: int):
  """The sin/cos rows [..., D] of `sinusoidal_positions` at positions `pos` [...] (any
  real values, traced or not), in float32."""
  freq = jnp.exp(-np.log(10_000.0) * (jnp.arange(0, d, 2) / d))  # [ceil(D/2)]
  angle = jnp.asarray(pos, jnp.float32)[..., None] * freq
  # Interleaved sin, cos as in `sinusoidal_positions`; an odd D drops the last cos.
  return jnp.stack([jnp.sin(angle), jnp.cos(angle)], -1).reshape(*angle.shape[:-1], -1)[
      ..., :d]


def positions_from_end(lengths, t: int):
  """[B, T] positions counted back from each example's last real position, which is 1
  (the Chomsky authors' `arange(T, 0, -1)`, per example): lengths [B] - 0..T-1. Padding
  positions (after the end) get values <= 0, which masked attention never lets matter."""
  return jnp.asarray(lengths)[:, None] - jnp.arange(t)[None, :]


def rope(x, pos, base: float = 10_000.0):
  """Rotary embedding (Su et al. 2021) of x [B, T, N, H] at positions `pos` [T]: each pair
  of features (2i, 2i+1) is rotated by the angle pos * base^(-2i/H). Computed in float32,
  returned in x's dtype. A rotation by a's transpose times one by b is one by b - a, so
  q·k after rope depends on the positions only through their difference. An odd head
  width leaves its last feature unrotated (as partial rotary embeddings do), so the
  budget's widths need no change."""
  h = x.shape[-1]
  pairs_width = h - h % 2
  freq = base ** (-jnp.arange(0, pairs_width, 2, dtype=jnp.float32) / pairs_width)  # [H/2]
  angle = jnp.asarray(pos, jnp.float32)[:, None] * freq  # [T, H/2]
  cos, sin = jnp.cos(angle)[:, None, :], jnp.sin(angle)[:, None, :]  # [T, 1, H/2]
  x32 = x.astype(jnp.float32)
  pairs = x32[..., :pairs_width].reshape(*x.shape[:-1], pairs_width // 2, 2)
  even, odd = pairs[..., 0], pairs[..., 1]
  rotated = jnp.stack([even * cos - odd * sin, even * sin + odd * cos], -1)
  rotated = rotated.reshape(*x.shape[:-1], pairs_width)
  return jnp.concatenate([rotated, x32[..., pairs_width:]], -1).astype(x.dtype)


def alibi_slopes(num_heads: int) -> np.ndarray:
  """ALiBi's per-head slopes m_h [N]: 2^(-8h/N) for h = 1..N when N is a power of two;
  otherwise those of the power of two below N, then every other slope of the one above,
  as Press et al.'s official code (which the Chomsky authors' code follows)."""
  def power_of_2(n):
    return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]
  if num_heads & (num_heads - 1) == 0:
    return np.array(power_of_2(num_heads), np.float32)
  below = 2 ** int(np.floor(np.log2(num_heads)))
  return np.array(power_of_2(below) + power_of_2(2 * below)[0::2][:num_heads - below],
                  np.float32)


def alibi_bias(num_heads: int, q_pos, k_pos, causal: bool):
  """[N, T, S] float32 ALiBi biases for queries at `q_pos` [T] and keys at `k_pos` [S]:
  -m_h |i - j|. Bidirectional (not `causal`) adds m_h / 2 where the key is left of the
  query (j < i), as the Chomsky authors' code (which breaks the left/right symmetry)."""
  q_pos = jnp.asarray(q_pos, jnp.float32)[:, None]
  k_pos = jnp.asarray(k_pos, jnp.float32)[None, :]
  distance = -jnp.abs(q_pos - k_pos)  # [T, S]
  if not causal:
    distance = distance + 0.5 * (k_pos < q_pos)
  return jnp.asarray(alibi_slopes(num_heads))[:, None, None] * distance


def tokens_dense(features: int, name: str, x, dtype=jnp.float32, param_dtype=jnp.float32):
  """`nn.Dense(features, name=name)` over the last axis of x [..., D], as one 2-D
  [tokens, D] x [D, F] matmul. The same parameters and maths; XLA:CPU runs a 3-D dot whose
  output feeds a GELU about 2x slower than the 2-D one (measured at B32 T256 D128)."""
  lead = x.shape[:-1]
  y = nn.Dense(features, dtype=dtype, param_dtype=param_dtype, name=name)(
      x.reshape(-1, x.shape[-1]))
  return y.reshape(*lead, features)


def attend(q, k, v, *, causal: bool = False, dropout=None, mask=None, bias=None):
  """softmax(q k^T / sqrt(D/N) + bias) v over heads: q [B, T, N, D/N], k and v [B, S, N, D/N] ->
  [B, T, N, D/N]. `dropout`, if given, is applied to the softmax weights [B*N, T, S] (e.g. a
  non-deterministic `nn.Dropout`). `mask` [B, S] bool, if given, hides the keys where it
  is False (padding) from every query, on top of the causal mask. `bias` [N, T, S], if
  given, is added to the scaled scores (ALiBi), in float32.

  On GPU and TPU through `jax.nn.dot_product_attention`, which takes cuDNN's fused kernel
  where it can (not with `dropout`, which it has no place for). On CPU, and wherever
  `dropout` is given, as batched matmuls over one [B*N] batch axis, heads first: XLA:CPU
  runs its two-batch-axis [B, N] attention 1.4x slower (fwd+bwd, B32 T256 D128 N4).

  The scores, their mask and the softmax are float32 whatever the inputs' dtype (the fused
  paths do the same); the output has the inputs' dtype.
  """
  if dropout is None and jax.default_backend() != 'cpu':
    return jax.nn.dot_product_attention(
        q, k, v, bias=None if bias is None else bias[None], is_causal=causal,
        mask=None if mask is None else mask[:, None, None, :])
  b, t, n, h = q.shape
  s = k.shape[1]
  heads_first = lambda a: a.transpose(0, 2, 1, 3).reshape(b * n, a.shape[1], h)
  scores = jnp.einsum('xth,xsh->xts', heads_first(q) * (h ** -0.5), heads_first(k),
                      preferred_element_type=jnp.float32)  # [B*N, T, S], float32
  if bias is not None:  # [N, T, S] -> [B*N, T, S], heads first as the scores
    scores = (scores.reshape(b, n, t, s) + bias.astype(jnp.float32)).reshape(b * n, t, s)
  visible = jnp.ones((1, t, s), bool)
  if causal:
    visible = visible & jnp.tril(jnp.ones((t, s), bool))
  if mask is not None:  # [B, S] -> [B*N, 1, S], heads first as the scores
    visible = visible & jnp.repeat(mask, n, axis=0)[:, None, :]
  if causal or mask is not None:
    scores = jnp.where(visible, scores, jnp.finfo(scores.dtype).min)
  weights = jax.nn.softmax(scores, axis=-1)  # [B*N, T, S]
  if dropout is not None:
    weights = dropout(weights)
  weights = weights.astype(v.dtype)
  y = jnp.einsum('xts,xsh->xth', weights, heads_first(v))
  return y.reshape(b, n, t, h).transpose(0, 2, 1, 3)


class Attention(nn.Module):
  """Multi-head attention: queries from x [B, T, D]; keys and values from `context`
  [B, S, D_c] (cross-attention) or from x itself when `context` is None (self-attention).
  Returns [B, T, D].

  Parameters: self-attention projects q, k and v with one fused Dense `qkv` (one matmul
  instead of three); cross-attention projects queries with `q` and keys/values from the
  context with a fused `kv`. Both end with the output projection `out`.

  With `train=True`, `attention_dropout` drops attention weights (the 'dropout' RNG).

  With `decode=True`, causal self-attention decodes token by token through Flax's decode
  cache (see `_cached`).

  `mask` [B, S] bool (True: a real position) hides padded keys: x's positions in
  self-attention, the context's in cross-attention.

  `positions` ROPE rotates the queries and keys, ALIBI biases the scores, both in
  self-attention only (between two sequences relative positions have no meaning); the
  other choices act on the input (`Transformer`), not here. In a decoding step the
  query's position is the cache index.
  """
  num_heads: int
  causal: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  attention_dropout: float = 0.0
  positions: Positions = Positions.SINUSOIDAL

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False, decode: bool = False,
               mask=None):
    b, t, d = x.shape
    n = self.num_heads
    if d % n:
      raise ValueError(f'width {d} is not divisible by num_heads={n}')
    dense = lambda features, name, z: tokens_dense(features, name, z, self.dtype,
                                                   self.param_dtype)
    if context is None:
      qkv = dense(3 * d, 'qkv', x).reshape(b, t, 3, n, d // n)  # [B, T, 3, N, D/N]
      q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    else:
      if self.causal:
        # A causal mask orders queries against keys of the same sequence; across two
        # sequences it has no meaning.
        raise ValueError('cross-attention cannot be causal')
      s = context.shape[1]
      q = dense(d, 'q', x).reshape(b, t, n, d // n)  # [B, T, N, D/N]
      kv = dense(2 * d, 'kv', context).reshape(b, s, 2, n, d // n)  # [B, S, 2, N, D/N]
      k, v = kv[:, :, 0], kv[:, :, 1]
    relative = context is None and self.positions in (Positions.ROPE, Positions.ALIBI)
    pos = None
    if relative:
      stepping = decode and self.has_variable('cache', 'cache_index')
      start = self.get_variable('cache', 'cache_index') if stepping else 0
      pos = start + jnp.arange(t)  # [T]
    if relative and self.positions == Positions.ROPE:
      q, k = rope(q, pos), rope(k, pos)  # the cache then holds rotated keys
    y = self._cached(q, k, v, alibi=relative and self.positions == Positions.ALIBI) \
        if decode else None
    if y is None:
      # Only a dropout that acts is passed: at rate 0 or in evaluation the fused path stays.
      dropout = (nn.Dropout(self.attention_dropout, deterministic=False,
                            name='weights_dropout')
                 if train and self.attention_dropout > 0 else None)
      bias = (alibi_bias(n, pos, pos, self.causal)
              if relative and self.positions == Positions.ALIBI else None)
      y = attend(q, k, v, causal=self.causal, dropout=dropout, mask=mask,
                 bias=bias)  # [B, T, N, D/N]
    return dense(d, 'out', y.reshape(b, t, d))

  def _cached(self, q, k, v, alibi: bool = False):
    """Flax's decode cache ('cache' collection: cached_key, cached_value [B, L, N, D/N],
    cache_index), as in nn.MultiHeadDotProductAttention. The call that finds no cache
    creates it for the L positions of its input and returns None: it attends as usual.
    Each later call, one query q [B, 1, N, D/N], writes its k and v at `cache_index` and
    attends over the slots filled so far, in q's dtype (the scores and softmax in float32).

    The cache is float32 (holding bf16 keys and values exactly) and fixed-size, so one
    compiled step serves every position; the unfilled tail is masked, so each step attends
    over all L slots (its cost grows with the cache, not with the tokens so far). Past L
    there is no slot: the output is NaN rather than silently wrong.
    """
    if not self.causal:
      raise ValueError('token-by-token decoding needs causal self-attention (causal=True): a '
                       'bidirectional output depends on later tokens')
    started = self.has_variable('cache', 'cached_key')
    keys = self.variable('cache', 'cached_key', jnp.zeros, k.shape, jnp.float32)
    values = self.variable('cache', 'cached_value', jnp.zeros, v.shape, jnp.float32)
    index = self.variable('cache', 'cache_index', lambda: jnp.array(0, jnp.int32))
    if not started:
      return None
    if q.shape[1] != 1:
      raise ValueError(f'a decoding step reads one position, got {q.shape[1]}')
    i = index.value
    keys.value = jax.lax.dynamic_update_slice(keys.value, k.astype(jnp.float32), (0, i, 0, 0))
    values.value = jax.lax.dynamic_update_slice(values.value, v.astype(jnp.float32),
                                                (0, i, 0, 0))
    index.value = i + 1
    slots = keys.value.shape[1]
    visible = jnp.arange(slots) <= i  # [L]: the filled prefix and this position
    bias = (alibi_bias(self.num_heads, i[None], jnp.arange(slots), causal=True)[None]
            if alibi else None)  # [1, N, 1, L]
    y = jax.nn.dot_product_attention(q, keys.value.astype(q.dtype), values.value.astype(q.dtype),
                                     bias=bias,
                                     mask=visible[None, None, None, :])  # [B, 1, N, D/N]
    return jnp.where(i < slots, y, jnp.nan)


class Block(nn.Module):
  """Pre-LN residual block: x + attn(LN(x)); given a `context` [B, S, D] (the encoder
  output of an encoder-decoder), then x + cross_attn(LN(x), context); then x + MLP(LN(x)).
  With `train=True`, each sublayer's output is dropped at rate `dropout` before its
  residual add, and attention weights at `attention_dropout`. `decode` decodes the
  self-attention token by token (`Attention`). `mask` [B, T] and `context_mask` [B, S]
  (True: real) hide the padding of x and of the context. `positions` reaches the
  self-attention (ROPE, ALIBI act there).
  """
  num_heads: int
  mlp_ratio: int
  causal: bool
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  dropout: float = 0.0
  attention_dropout: float = 0.0
  positions: Positions = Positions.SINUSOIDAL

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False, decode: bool = False,
               mask=None, context_mask=None):
    d = x.shape[-1]
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    # No parameters, and the identity at rate 0 or in evaluation (no RNG drawn).
    drop = nn.Dropout(self.dropout, deterministic=not train, name='residual_dropout')
    attention = lambda name, causal=False, positions=Positions.NONE: Attention(
        self.num_heads, causal, **types, attention_dropout=self.attention_dropout,
        positions=positions, name=name)
    self_attention = attention('attn', self.causal, self.positions)
    x = x + drop(self_attention(nn.LayerNorm(**types, name='attn_norm')(x), train=train,
                                decode=decode, mask=mask))
    if context is not None:
      # The context is not normalised here: it is a stack's output, already final-LN'd.
      x = x + drop(attention('cross')(nn.LayerNorm(**types, name='cross_norm')(x), context,
                                      train=train, mask=context_mask))
    h = tokens_dense(self.mlp_ratio * d, 'mlp_in', nn.LayerNorm(**types, name='mlp_norm')(x),
                     **types)
    return x + drop(tokens_dense(d, 'mlp_out', nn.gelu(h), **types))


class Transformer(nn.Module):
  """[B, T, D] -> [B, T, D]: positions, `num_layers` pre-LN blocks, final LayerNorm; causal
  when `config.causal`. Given a `context` [B, S, D], every block also cross-attends to it
  (the decoder stack of an encoder-decoder).

  With `decode=True` a causal stack decodes token by token in Flax's decode convention
  (archs/decoding.py): the call on a [B, L, D] sequence creates the cache (L positions),
  each later call reads one position [B, 1, D].

  `mask` [B, T] bool (True: a real position; padding only at the end) hides padded keys
  from every query, so the outputs at real positions do not depend on the padding;
  `context_mask` [B, S] does the same for the context's padding."""
  config: TransformerConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False, decode: bool = False,
               mask=None, context_mask=None):
    cfg = self.config
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    table = self._positions(x.shape[1], x.shape[2], decode, mask)
    x = x.astype(self.dtype)  # the residual stream's dtype
    if table is not None:
      x = x + jnp.asarray(table, self.dtype)
    # Dropout on the sum of embeddings and positions (Vaswani et al. 2017, section 5.4).
    x = nn.Dropout(cfg.dropout, deterministic=not train, name='input_dropout')(x)
    for i in range(cfg.num_layers):
      x = Block(cfg.num_heads, cfg.mlp_ratio, cfg.causal, **types, dropout=cfg.dropout,
                attention_dropout=cfg.attention_dropout, positions=Positions(cfg.positions),
                name=f'block_{i}')(
          x, context, train=train, decode=decode, mask=mask, context_mask=context_mask)
    return nn.LayerNorm(**types, name='final_norm')(x)

  def _positions(self, t: int, d: int, decode: bool, mask=None):
    """The position rows [T, D] (or [B, T, D]) added to the input, None where nothing is
    added (NONE, and ROPE and ALIBI, which act in attention): the table's first T. In a
    decoding step, row `cache_index` of it, the next position (NaN past the table); the
    call that creates the cache (T = its L slots) keeps a sinusoidal table's L rows there,
    as the step cannot know L otherwise. SINUSOIDAL_FROM_END: per-example rows counted
    from each example's real end (`mask`); it cannot decode, as each new token would move
    every earlier position (and the cached keys computed from them)."""
    kind = Positions(self.config.positions)
    if kind in (Positions.NONE, Positions.ROPE, Positions.ALIBI):
      return None
    if kind == Positions.SINUSOIDAL_FROM_END:
      if decode:
        raise ValueError(
            "positions='sinusoidal_from_end' cannot decode token by token: each new token "
            'moves every earlier position; use the whole-sequence call, or positions '
            "'sinusoidal', 'rope', 'alibi' or 'none'")
      lengths = jnp.full((1,), t) if mask is None else mask.sum(-1)  # [B] (or [1])
      return sinusoid(positions_from_end(lengths, t), d)  # [B, T, D]
    learned = kind == Positions.LEARNED
    if decode and self.has_variable('cache', 'cache_index'):
      index = self.variable('cache', 'cache_index')
      i = index.value
      index.value = i + 1
      table = self.get_variable('params' if learned else 'cache', 'positions')
      return jnp.where(i < table.shape[0], jax.lax.dynamic_slice_in_dim(table, i, 1), jnp.nan)
    if learned:
      table = self.param('positions', nn.initializers.normal(0.02), (t, d), self.param_dtype)
    else:
      table = sinusoidal_positions(t, d)
    if decode:
      self.variable('cache', 'cache_index', lambda: jnp.array(0, jnp.int32))
      if not learned:
        self.variable('cache', 'positions', jnp.asarray, table)
    return table


def layer_norm_flops(d: int) -> float:
  return 8.0 * d  # mean, variance, normalise, scale and shift


def attention_flops(t: int, d: int, heads: int, s: int | None = None) -> float:
  """Forward FLOPs of `Attention` with T queries over S keys/values (self-attention when
  `s` is None: S = T; the full T x S score matrix is computed even when causal, as XLA
  and cuDNN do)."""
  if s is None:
    s, projections = t, t * registry.dense_flops(d, 3 * d)
  else:
    projections = t * registry.dense_flops(d, d) + s * registry.dense_flops(d, 2 * d)
  scores = t * s * (4.0 * d + 5 * heads)  # QK^T and PV matmuls, scale/mask/softmax
  return projections + scores + t * registry.dense_flops(d, d)


def block_flops(t: int, d: int, heads: int, mlp_ratio: int, s: int | None = None) -> float:
  """Forward FLOPs of one pre-LN `Block` over a [T, D] sequence; with `s`, the block also
  cross-attends to a context of S positions."""
  m = mlp_ratio * d
  sublayer = t * (layer_norm_flops(d) + d)  # pre-LN and residual add
  flops = (sublayer + attention_flops(t, d, heads)
           + sublayer + t * (registry.dense_flops(d, m) + registry.dense_flops(m, d)
                             + 8 * m))  # GELU (tanh approximation)
  if s is not None:
    flops += sublayer + attention_flops(t, d, heads, s)
  return flops


def transformer_flops(cfg: TransformerConfig, shape: tuple[int, ...],
                      context_length: int | None = None) -> float:
  """Forward FLOPs of `Transformer` for one [T, D] example (cross-attending to a context of
  `context_length` positions if given)."""
  t, d = shape
  return (position_flops(cfg, t, d)
          + cfg.num_layers * block_flops(t, d, cfg.num_heads, cfg.mlp_ratio, context_length)
          + t * layer_norm_flops(d))


def position_flops(cfg: TransformerConfig, t: int, d: int) -> float:
  """Forward FLOPs of the positions over T positions, all layers: the add of a table
  (a fixed one is a constant; SINUSOIDAL_FROM_END also computes its angles per example,
  one multiply per row and frequency, its sin/cos being transcendentals, which XLA counts
  apart from FLOPs); ROPE's rotation of q and k in each layer (2 multiplies and an add per
  feature); ALIBI's add to each of the T x T x N scores in each layer (the bias itself is a
  constant of T). Elementwise, so second order next to the matmuls, but counted."""
  kind = Positions(cfg.positions)
  if kind in (Positions.SINUSOIDAL, Positions.LEARNED):
    return t * d
  if kind == Positions.SINUSOIDAL_FROM_END:
    return 1.5 * t * d
  if kind == Positions.ROPE:
    return cfg.num_layers * 2 * 3 * t * d
  if kind == Positions.ALIBI:
    return cfg.num_layers * t * t * cfg.num_heads
  return 0.0  # NONE


registry.register(registry.ArchSpec(
    name='transformer', family='attention',
    description='Transformer encoder, pre-LN, bidirectional (causal for per-token tasks)',
    module=Transformer, config_for_width=lambda w: TransformerConfig(d_model=w),
    input_kind='sequence', causal=None, flops=transformer_flops, width_step=4,
    depth_fields=('num_layers',), decoding=registry.Decoding.CACHE,
    search_space={**registry.DROPOUT_SPACE, **registry.POSITIONS_SPACE}))
