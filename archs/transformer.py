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


def attend(q, k, v, *, causal: bool = False, dropout=None):
  """softmax(q k^T / sqrt(D/N)) v over heads: q [B, T, N, D/N], k and v [B, S, N, D/N] ->
  [B, T, N, D/N]. `dropout`, if given, is applied to the softmax weights [B*N, T, S] (e.g. a
  non-deterministic `nn.Dropout`).

  On GPU and TPU through `jax.nn.dot_product_attention`, which takes cuDNN's fused kernel
  where it can (not with `dropout`, which it has no place for). On CPU, and wherever
  `dropout` is given, as batched matmuls over one [B*N] batch axis, heads first: XLA:CPU
  runs its two-batch-axis [B, N] attention 1.4x slower (fwd+bwd, B32 T256 D128 N4).

  The scores, their mask and the softmax are float32 whatever the inputs' dtype (the fused
  paths do the same); the output has the inputs' dtype.
  """
  if dropout is None and jax.default_backend() != 'cpu':
    return jax.nn.dot_product_attention(q, k, v, is_causal=causal)
  b, t, n, h = q.shape
  s = k.shape[1]
  heads_first = lambda a: a.transpose(0, 2, 1, 3).reshape(b * n, a.shape[1], h)
  scores = jnp.einsum('xth,xsh->xts', heads_first(q) * (h ** -0.5), heads_first(k),
                      preferred_element_type=jnp.float32)  # [B*N, T, S], float32
  if causal:
    mask = jnp.tril(jnp.ones((t, s), bool))
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
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
  """
  num_heads: int
  causal: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  attention_dropout: float = 0.0

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False):
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
    # Only a dropout that acts is passed: at rate 0 or in evaluation the fused path stays.
    dropout = (nn.Dropout(self.attention_dropout, deterministic=False, name='weights_dropout')
               if train and self.attention_dropout > 0 else None)
    y = attend(q, k, v, causal=self.causal, dropout=dropout)  # [B, T, N, D/N]
    return dense(d, 'out', y.reshape(b, t, d))


# The self-attention call of `Attention`, under the name the encoder first used.
SelfAttention = Attention


class Block(nn.Module):
  """Pre-LN residual block: x + attn(LN(x)); given a `context` [B, S, D] (the encoder
  output of an encoder-decoder), then x + cross_attn(LN(x), context); then x + MLP(LN(x)).
  With `train=True`, each sublayer's output is dropped at rate `dropout` before its
  residual add, and attention weights at `attention_dropout`.
  """
  num_heads: int
  mlp_ratio: int
  causal: bool
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False):
    d = x.shape[-1]
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    # No parameters, and the identity at rate 0 or in evaluation (no RNG drawn).
    drop = nn.Dropout(self.dropout, deterministic=not train, name='residual_dropout')
    attention = lambda name, causal=False: Attention(
        self.num_heads, causal, **types, attention_dropout=self.attention_dropout, name=name)
    x = x + drop(attention('attn', self.causal)(nn.LayerNorm(**types, name='attn_norm')(x),
                                                train=train))
    if context is not None:
      # The context is not normalised here: it is a stack's output, already final-LN'd.
      x = x + drop(attention('cross')(nn.LayerNorm(**types, name='cross_norm')(x), context,
                                      train=train))
    h = tokens_dense(self.mlp_ratio * d, 'mlp_in', nn.LayerNorm(**types, name='mlp_norm')(x),
                     **types)
    return x + drop(tokens_dense(d, 'mlp_out', nn.gelu(h), **types))


class Transformer(nn.Module):
  """[B, T, D] -> [B, T, D]: positions, `num_layers` pre-LN blocks, final LayerNorm; causal
  when `config.causal`. Given a `context` [B, S, D], every block also cross-attends to it
  (the decoder stack of an encoder-decoder)."""
  config: TransformerConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, context=None, *, train: bool = False):
    cfg = self.config
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    t, d = x.shape[1], x.shape[2]
    if cfg.positions == Positions.LEARNED:
      table = self.param('positions', nn.initializers.normal(0.02), (t, d), self.param_dtype)
    else:
      table = sinusoidal_positions(t, d)
    x = x.astype(self.dtype) + jnp.asarray(table, self.dtype)  # the residual stream's dtype
    # Dropout on the sum of embeddings and positions (Vaswani et al. 2017, section 5.4).
    x = nn.Dropout(cfg.dropout, deterministic=not train, name='input_dropout')(x)
    for i in range(cfg.num_layers):
      x = Block(cfg.num_heads, cfg.mlp_ratio, cfg.causal, **types, dropout=cfg.dropout,
                attention_dropout=cfg.attention_dropout, name=f'block_{i}')(
          x, context, train=train)
    return nn.LayerNorm(**types, name='final_norm')(x)


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


# ---------------------------------------------------------------------------------------
# Token-by-token decoding with a key/value cache (causal stacks only).
#
# Pure functions over the parameter tree of `Transformer` (block_i/{attn_norm, attn/{qkv,
# out}, mlp_norm, mlp_in, mlp_out}, final_norm, positions when learned). Each piece is the
# flax layer the module uses, applied to its own sub-parameters, so the maths (LayerNorm's
# epsilon, the tanh GELU, the attention call) is the module's. The step computes in the
# dtype of its input x_t (the module's `dtype`); the cache stays float32, holding the
# bf16 keys and values exactly.

def _require_causal(cfg: TransformerConfig) -> None:
  if not cfg.causal:
    raise ValueError('token-by-token decoding needs a causal stack (causal=True): a '
                     'bidirectional output depends on later tokens')


def init_cache(cfg: TransformerConfig, batch: int, max_length: int) -> dict:
  """Empty cache for `max_length` positions: per layer the keys and values
  [B, max_length, N, D/N] (zeros, masked until written), and `index`, the next position."""
  _require_causal(cfg)
  if cfg.d_model % cfg.num_heads:
    raise ValueError(f'width {cfg.d_model} is not divisible by num_heads={cfg.num_heads}')
  zeros = jnp.zeros((batch, max_length, cfg.num_heads, cfg.d_model // cfg.num_heads),
                    jnp.float32)
  return {'index': jnp.zeros((), jnp.int32),
          'layers': tuple({'k': zeros, 'v': zeros} for _ in range(cfg.num_layers))}


def _attention_step(num_heads: int, params, layer: dict, h, index, visible):
  """One query [B, D] against the cached keys/values plus its own: writes this position's
  k and v at `index`, attends over the positions `visible` [L] (0..index), in h's dtype
  (the scores and softmax in float32 inside `dot_product_attention`)."""
  b, d = h.shape
  n = num_heads
  qkv = nn.Dense(3 * d, dtype=h.dtype).apply({'params': params['qkv']}, h[:, None])  # [B, 1, 3D]
  qkv = qkv.reshape(b, 1, 3, n, d // n)  # the module's [B, T, 3, N, D/N] layout, T = 1
  q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, 1, N, D/N]
  keys = jax.lax.dynamic_update_slice(layer['k'], k.astype(layer['k'].dtype), (0, index, 0, 0))
  values = jax.lax.dynamic_update_slice(layer['v'], v.astype(layer['v'].dtype),
                                        (0, index, 0, 0))
  y = jax.nn.dot_product_attention(q, keys.astype(q.dtype), values.astype(q.dtype),
                                   mask=visible[None, None, None, :])  # [B, 1, N, D/N]
  out = nn.Dense(d, dtype=h.dtype).apply({'params': params['out']},
                                         y.reshape(b, 1, d))[:, 0]  # [B, D]
  return {'k': keys, 'v': values}, out


def _block_step(cfg: TransformerConfig, params, layer: dict, x, index, visible):
  """`Block` (self-attention only) for one position x [B, D], in x's dtype."""
  dtype = x.dtype
  norm = lambda name, z: nn.LayerNorm(dtype=dtype).apply({'params': params[name]}, z)
  layer, attended = _attention_step(cfg.num_heads, params['attn'], layer,
                                    norm('attn_norm', x), index, visible)
  x = x + attended
  h = nn.Dense(cfg.mlp_ratio * cfg.d_model, dtype=dtype).apply({'params': params['mlp_in']},
                                                              norm('mlp_norm', x))
  return layer, x + nn.Dense(cfg.d_model, dtype=dtype).apply({'params': params['mlp_out']},
                                                             nn.gelu(h))


def decode_step(cfg: TransformerConfig, params, cache: dict, x_t):
  """Position `cache['index']` of a causal stack: x_t [B, D] -> (cache, y_t [B, D]), equal
  to that position of `Transformer(cfg, dtype=x_t.dtype).apply({'params': params}, x)`.

  The cache is fixed-size, so one compiled step serves every position; the unfilled tail
  is masked out, which makes each step attend over all max_length slots (the cost grows
  with the cache, not with the tokens so far). Past max_length (or a learned table's
  length) there is no slot: the output is NaN rather than silently wrong.
  """
  _require_causal(cfg)
  d = x_t.shape[-1]
  index = cache['index']
  max_length = cache['layers'][0]['k'].shape[1]
  if cfg.positions == Positions.LEARNED:
    table = params['positions']  # [T_init, D], sized by the length seen at init
  else:
    table = jnp.asarray(sinusoidal_positions(max_length, d))  # [L, D], as the module's
  x = x_t + jax.lax.dynamic_index_in_dim(table, index, 0, keepdims=False).astype(x_t.dtype)
  visible = jnp.arange(max_length) <= index  # [L]: the filled prefix and this position
  layers = []
  for i, layer in enumerate(cache['layers']):
    layer, x = _block_step(cfg, params[f'block_{i}'], layer, x, index, visible)
    layers.append(layer)
  y = nn.LayerNorm(dtype=x_t.dtype).apply({'params': params['final_norm']}, x)
  y = jnp.where(index < min(max_length, table.shape[0]), y, jnp.nan)
  return {'index': index + 1, 'layers': tuple(layers)}, y


registry.register(registry.ArchSpec(
    name='transformer', family='attention',
    description='Transformer encoder, pre-LN, bidirectional (causal for per-token tasks)',
    module=Transformer, config_for_width=lambda w: TransformerConfig(d_model=w),
    input_kind='sequence', causal=None, flops=transformer_flops, width_step=4,
    depth_fields=('num_layers',),
    decoding=registry.Decoding(init=init_cache, step=decode_step)))
