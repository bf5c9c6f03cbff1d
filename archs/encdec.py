"""Encoder-decoder Transformer (Vaswani et al. 2017, "Attention is all you need").

The encoder reads the source with bidirectional self-attention; each decoder block applies
causal self-attention over the target, cross-attention to the encoder output, then an MLP.
Sinusoidal positions on both sides, as in the paper. One departure: blocks are pre-LN
(LayerNorm before each sublayer, plus a final LayerNorm on each stack) rather than the
paper's post-LN, which trains more stably without long learning-rate warm-up at the short
budgets of a benchmark (Xiong et al. 2020).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from archbench.archs import registry
from archbench.archs import transformer


@dataclasses.dataclass(frozen=True)
class EncDecConfig:
  """`encoder_layers` encoder blocks and `decoder_layers` decoder blocks, all of width
  `d_model` with `num_heads` heads and an MLP of `mlp_ratio * d_model`."""
  d_model: int = 64
  # 2 heads, not the 4 of the other attention backbones: widths then step by 2, and no
  # multiple of 4 lands within 10% of the tiny budget (16 -> -23%, 20 -> +19%).
  num_heads: int = 2
  encoder_layers: int = 2
  decoder_layers: int = 2
  mlp_ratio: int = 4
  # Training-time dropout (transformer.TransformerConfig); 0 leaves the model unchanged.
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @property
  def width(self) -> int:
    return self.d_model

  def _stack(self, layers: int, causal: bool) -> transformer.TransformerConfig:
    return transformer.TransformerConfig(
        d_model=self.d_model, num_layers=layers, num_heads=self.num_heads,
        mlp_ratio=self.mlp_ratio, causal=causal, positions=transformer.Positions.SINUSOIDAL,
        dropout=self.dropout, attention_dropout=self.attention_dropout)

  def encoder(self) -> transformer.TransformerConfig:
    return self._stack(self.encoder_layers, causal=False)

  def decoder(self) -> transformer.TransformerConfig:
    return self._stack(self.decoder_layers, causal=True)


class EncDec(nn.Module):
  """(src [B, S, D], tgt [B, T, D]) -> [B, T, D]; output t sees all of src and tgt 0..t.
  `mask` [B, S] bool (True: real) hides the source's padding from both stacks."""
  config: EncDecConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, src, tgt, *, train: bool = False, mask=None):
    cfg = self.config
    stack = lambda config, name: transformer.Transformer(
        config, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    memory = stack(cfg.encoder(), 'encoder')(src, train=train, mask=mask)
    return stack(cfg.decoder(), 'decoder')(tgt, memory, train=train, context_mask=mask)


def encdec_flops(cfg: EncDecConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one example of source length S and target length T."""
  s, t, d = shape
  return (transformer.transformer_flops(cfg.encoder(), (s, d))
          + transformer.transformer_flops(cfg.decoder(), (t, d), context_length=s))


registry.register(registry.ArchSpec(
    name='encdec', family='attention',
    description='Encoder-decoder Transformer (Vaswani et al.), pre-LN, cross-attention',
    module=EncDec, config_for_width=lambda w: EncDecConfig(d_model=w),
    input_kind='encdec', causal=True, flops=encdec_flops, width_step=2,
    depth_fields=('encoder_layers', 'decoder_layers'), search_space=registry.DROPOUT_SPACE))
