"""Transformer encoder (pre-LN), bidirectional or causal.

Attention goes through `jax.nn.dot_product_attention`, so a GPU takes the fused cuDNN path
when one is present and the CPU takes XLA's. The attention and block modules here are the
building blocks for every attention-family backbone.
"""
from __future__ import annotations

import dataclasses
import enum

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from archs import registry


class Positions(str, enum.Enum):
  SINUSOIDAL = 'sinusoidal'  # fixed (Vaswani et al. 2017); no parameters
  LEARNED = 'learned'        # one vector per position, sized by the input length


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  d_model: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  causal: bool = False
  positions: Positions = Positions.SINUSOIDAL

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


class SelfAttention(nn.Module):
  """Multi-head self-attention: [B, T, D] -> [B, T, D]."""
  num_heads: int
  causal: bool

  @nn.compact
  def __call__(self, x):
    b, t, d = x.shape
    qkv = nn.Dense(3 * d, name='qkv')(x)
    qkv = qkv.reshape(b, t, 3, self.num_heads, d // self.num_heads)  # [B, T, 3, N, D/N]
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    y = jax.nn.dot_product_attention(q, k, v, is_causal=self.causal)  # [B, T, N, D/N]
    return nn.Dense(d, name='out')(y.reshape(b, t, d))


class Block(nn.Module):
  """Pre-LN residual block: x + attn(LN(x)), then x + MLP(LN(x))."""
  num_heads: int
  mlp_ratio: int
  causal: bool

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    x = x + SelfAttention(self.num_heads, self.causal)(nn.LayerNorm()(x))
    h = nn.Dense(self.mlp_ratio * d)(nn.LayerNorm()(x))
    return x + nn.Dense(d)(nn.gelu(h))


class Transformer(nn.Module):
  """[B, T, D] -> [B, T, D]; causal when `config.causal`."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    cfg = self.config
    t, d = x.shape[1], x.shape[2]
    if cfg.positions == Positions.LEARNED:
      x = x + self.param('positions', nn.initializers.normal(0.02), (t, d))
    else:
      x = x + sinusoidal_positions(t, d)
    for i in range(cfg.num_layers):
      x = Block(cfg.num_heads, cfg.mlp_ratio, cfg.causal, name=f'block_{i}')(x)
    return nn.LayerNorm(name='final_norm')(x)


def layer_norm_flops(d: int) -> float:
  return 8.0 * d  # mean, variance, normalise, scale and shift


def block_flops(t: int, d: int, heads: int, mlp_ratio: int) -> float:
  """Forward FLOPs of one pre-LN block over a [T, D] sequence (the full T x T score matrix
  is computed even when causal, as XLA and cuDNN do)."""
  m = mlp_ratio * d
  per_token = (2 * layer_norm_flops(d)
               + registry.dense_flops(d, 3 * d) + registry.dense_flops(d, d)
               + registry.dense_flops(d, m) + registry.dense_flops(m, d)
               + 8 * m  # GELU (tanh approximation)
               + 2 * d)  # two residual adds
  attention = t * t * (4.0 * d + 5 * heads)  # QK^T and PV matmuls, scale/mask/softmax
  return t * per_token + attention


def transformer_flops(cfg: TransformerConfig, shape: tuple[int, ...]) -> float:
  t, d = shape
  return (t * d  # position add
          + cfg.num_layers * block_flops(t, d, cfg.num_heads, cfg.mlp_ratio)
          + t * layer_norm_flops(d))


registry.register(registry.ArchSpec(
    name='transformer', family='attention',
    description='Transformer encoder, pre-LN, bidirectional (causal for per-token tasks)',
    module=Transformer, config_for_width=lambda w: TransformerConfig(d_model=w),
    input_kind='sequence', causal=None, flops=transformer_flops, width_step=4))
