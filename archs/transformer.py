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
  SINUSOIDAL = 'sinusoidal'  # fixed (Vaswani et al. 2017); no parameters
  LEARNED = 'learned'        # one vector per position, sized by the input length


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


def sinusoidal_positions(length: int, d: int) -> np.ndarray:
  """[T, D] table of sin/cos at geometric frequencies."""
  pos = np.arange(length)[:, None]
  freq = np.exp(-np.log(10_000.0) * (np.arange(0, d, 2) / d))
  table = np.zeros((length, d), np.float32)
  table[:, 0::2] = np.sin(pos * freq)
  table[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
  return table


def tokens_dense(features: int, name: str, x, dtype=jnp.float32, param_dtype=jnp.float32):
  """`nn.Dense(features, name=name)` over the last axis of x [..., D], as one 2-D
  [tokens, D] x [D, F] matmul. The same parameters and maths; XLA:CPU runs a 3-D dot whose
  output feeds a GELU about 2x slower than the 2-D one (measured at B32 T256 D128)."""
  lead = x.shape[:-1]
  y = nn.Dense(features, dtype=dtype, param_dtype=param_dtype, name=name)(
      x.reshape(-1, x.shape[-1]))
  return y.reshape(*lead, features)


def attend(q, k, v, *, causal: bool = False, dropout=None, mask=None):
  """softmax(q k^T / sqrt(D/N)) v over heads: q [B, T, N, D/N], k and v [B, S, N, D/N] ->
  [B, T, N, D/N]. `dropout`, if given, is applied to the softmax weights [B*N, T, S] (e.g. a
  non-deterministic `nn.Dropout`). `mask` [B, S] bool, if given, hides the keys where it
  is False (padding) from every query, on top of the causal mask.

  On GPU and TPU through `jax.nn.dot_product_attention`, which takes cuDNN's fused kernel
  where it can (not with `dropout`, which it has no place for). On CPU, and wherever
  `dropout` is given, as batched matmuls over one [B*N] batch axis, heads first: XLA:CPU
  runs its two-batch-axis [B, N] attention 1.4x slower (fwd+bwd, B32 T256 D128 N4).

  The scores, their mask and the softmax are float32 whatever the inputs' dtype (the fused
  paths do the same); the output has the inputs' dtype.
  """
  if dropout is None and jax.default_backend() != 'cpu':
    return jax.nn.dot_product_attention(
        q, k, v, is_causal=causal, mask=None if mask is None else mask[:, None, None, :])
  b, t, n, h = q.shape
  s = k.shape[1]
  heads_first = lambda a: a.transpose(0, 2, 1, 3).reshape(b * n, a.shape[1], h)
  scores = jnp.einsum('xth,xsh->xts', heads_first(q) * (h ** -0.5), heads_first(k),
                      preferred_element_type=jnp.float32)  # [B*N, T, S], float32
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
  """
  num_heads: int
  causal: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  attention_dropout: float = 0.0

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
    y = self._cached(q, k, v) if decode else None
    if y is None:
      # Only a dropout that acts is passed: at rate 0 or in evaluation the fused path stays.
      dropout = (nn.Dropout(self.attention_dropout, deterministic=False,
                            name='weights_dropout')
                 if train and self.attention_dropout > 0 else None)
      y = attend(q, k, v, causal=self.causal, dropout=dropout, mask=mask)  # [B, T, N, D/N]
    return dense(d, 'out', y.reshape(b, t, d))

  def _cached(self, q, k, v):
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
    y = jax.nn.dot_product_attention(q, keys.value.astype(q.dtype), values.value.astype(q.dtype),
                                     mask=visible[None, None, None, :])  # [B, 1, N, D/N]
    return jnp.where(i < slots, y, jnp.nan)


class Block(nn.Module):
  """Pre-LN residual block: x + attn(LN(x)); given a `context` [B, S, D] (the encoder
  output of an encoder-decoder), then x + cross_attn(LN(x), context); then x + MLP(LN(x)).
  With `train=True`, each sublayer's output is dropped at rate `dropout` before its
  residual add, and attention weights at `attention_dropout`. `decode` decodes the
  self-attention token by token (`Attention`). `mask` [B, T] and `context_mask` [B, S]
  (True: real) hide the padding of x and of the context.
  """
  num_heads: int
  mlp_ratio: int
  causal: bool
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False, decode: bool = False,
               mask=None, context_mask=None):
    d = x.shape[-1]
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    # No parameters, and the identity at rate 0 or in evaluation (no RNG drawn).
    drop = nn.Dropout(self.dropout, deterministic=not train, name='residual_dropout')
    attention = lambda name, causal=False: Attention(
        self.num_heads, causal, **types, attention_dropout=self.attention_dropout, name=name)
    x = x + drop(attention('attn', self.causal)(nn.LayerNorm(**types, name='attn_norm')(x),
                                                train=train, decode=decode, mask=mask))
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
    table = self._positions(x.shape[1], x.shape[2], decode)
    x = x.astype(self.dtype) + jnp.asarray(table, self.dtype)  # the residual stream's dtype
    # Dropout on the sum of embeddings and positions (Vaswani et al. 2017, section 5.4).
    x = nn.Dropout(cfg.dropout, deterministic=not train, name='input_dropout')(x)
    for i in range(cfg.num_layers):
      x = Block(cfg.num_heads, cfg.mlp_ratio, cfg.causal, **types, dropout=cfg.dropout,
                attention_dropout=cfg.attention_dropout, name=f'block_{i}')(
          x, context, train=train, decode=decode, mask=mask, context_mask=context_mask)
    return nn.LayerNorm(**types, name='final_norm')(x)

  def _positions(self, t: int, d: int, decode: bool):
    """The position rows [T, D] added to the input: the table's first T. In a decoding
    step, row `cache_index` of it, the next position (NaN past the table); the call that
    creates the cache (T = its L slots) keeps a sinusoidal table's L rows there, as the
    step cannot know L otherwise."""
    learned = self.config.positions == Positions.LEARNED
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
  return (t * d  # position add
          + cfg.num_layers * block_flops(t, d, cfg.num_heads, cfg.mlp_ratio, context_length)
          + t * layer_norm_flops(d))


registry.register(registry.ArchSpec(
    name='transformer', family='attention',
    description='Transformer encoder, pre-LN, bidirectional (causal for per-token tasks)',
    module=Transformer, config_for_width=lambda w: TransformerConfig(d_model=w),
    input_kind='sequence', causal=None, flops=transformer_flops, width_step=4,
    depth_fields=('num_layers',), decoding=registry.Decoding.CACHE))
