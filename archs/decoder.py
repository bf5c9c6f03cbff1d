"""Decoder-only Transformer (GPT-style): causal self-attention, pre-LN, final LayerNorm.

It is the `transformer` encoder stack with the causal mask always on; a config of its own
keeps `causal` out of reach of overrides, so the registry's `causal=True` always holds, and
the decoder stays causal even on classification tasks, where `transformer` runs
bidirectionally: the two together compare causal against bidirectional attention.

Positions are sinusoidal by default. GPT-2's learned table (`positions='learned'`) has
T x D parameters, so it would break the equal-parameter comparison as T grows (at T=1024
and the small size it alone would exceed half the budget).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from archbench.archs import registry
from archbench.archs import transformer


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """`num_layers` causal pre-LN blocks of width `d_model`. Learned positions, where chosen,
  are sized by the sequence length seen at init."""
  d_model: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  positions: transformer.Positions = transformer.Positions.SINUSOIDAL
  # Training-time dropout (transformer.TransformerConfig); 0 leaves the model unchanged.
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @property
  def width(self) -> int:
    return self.d_model

  @property
  def decodes(self) -> bool:
    return self.stack().decodes

  def stack(self) -> transformer.TransformerConfig:
    """The equivalent causal `transformer.Transformer` config."""
    return transformer.TransformerConfig(
        d_model=self.d_model, num_layers=self.num_layers, num_heads=self.num_heads,
        mlp_ratio=self.mlp_ratio, causal=True, positions=self.positions, dropout=self.dropout,
        attention_dropout=self.attention_dropout)


class Decoder(nn.Module):
  """[B, T, D] -> [B, T, D]; output t depends on inputs 0..t only. `decode` decodes token
  by token (transformer.Transformer)."""
  config: DecoderConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False, decode: bool = False, mask=None):
    return transformer.Transformer(self.config.stack(), dtype=self.dtype,
                                   param_dtype=self.param_dtype, name='stack')(
        x, train=train, decode=decode, mask=mask)


def decoder_flops(cfg: DecoderConfig, shape: tuple[int, ...]) -> float:
  return transformer.transformer_flops(cfg.stack(), shape)


registry.register(registry.ArchSpec(
    name='decoder', family='attention',
    description='Decoder-only Transformer (GPT-style), causal, pre-LN',
    module=Decoder, config_for_width=lambda w: DecoderConfig(d_model=w),
    input_kind='sequence', causal=True, flops=decoder_flops, width_step=4,
    depth_fields=('num_layers',), decoding=registry.Decoding.CACHE,
    search_space={**registry.DROPOUT_SPACE, **registry.POSITIONS_SPACE}))
