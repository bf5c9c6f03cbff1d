"""Vision Transformer (Dosovitskiy et al. 2021): non-overlapping p x p patches, linearly
projected, a learned [CLS] token, learned positions, pre-LN encoder blocks, final LayerNorm;
the image's vector is the [CLS] token's output.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from archbench.archs import registry
from archbench.archs import transformer


@dataclasses.dataclass(frozen=True)
class ViTConfig:
  """`num_layers` bidirectional pre-LN blocks of width `d_model` over the patches of an
  image. `patch_size` must divide the image's height and width; the default 2 turns an
  8 x 8 image into 16 tokens."""
  d_model: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  patch_size: int = 2
  # Training-time dropout (transformer.TransformerConfig); 0 leaves the model unchanged.
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @property
  def width(self) -> int:  # the [B, D] output
    return self.d_model

  def stack(self) -> transformer.TransformerConfig:
    """The encoder over [CLS] + patch tokens; its learned positions are sized by the
    number of patches (plus one for [CLS]) at init."""
    return transformer.TransformerConfig(
        d_model=self.d_model, num_layers=self.num_layers, num_heads=self.num_heads,
        mlp_ratio=self.mlp_ratio, causal=False, positions=transformer.Positions.LEARNED,
        dropout=self.dropout, attention_dropout=self.attention_dropout)


def num_patches(image_shape: tuple[int, ...], patch_size: int) -> int:
  """H/p * W/p; raises ValueError if p does not divide both H and W."""
  h, w = image_shape[0], image_shape[1]
  if patch_size < 1 or h % patch_size or w % patch_size:
    raise ValueError(f'patch_size={patch_size} must divide the image height and width '
                     f'({h} x {w}); pick a divisor of both')
  return (h // patch_size) * (w // patch_size)


class PatchEmbed(nn.Module):
  """[B, H, W, C] -> [B, H/p * W/p, D]: each non-overlapping p x p patch, flattened, times
  one shared [p*p*C, D] matrix plus a bias; patches in row-major order."""
  patch_size: int
  width: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, h, w, _ = x.shape
    n = num_patches((h, w), self.patch_size)
    p = self.patch_size
    # A p x p convolution with stride p is exactly the per-patch linear projection.
    y = nn.Conv(self.width, (p, p), strides=(p, p), padding='VALID', dtype=self.dtype,
                param_dtype=self.param_dtype, name='proj')(x)
    return y.reshape(b, n, self.width)  # [B, H/p, W/p, D] -> [B, N, D]


class ViT(nn.Module):
  """[B, H, W, C] -> [B, D]."""
  config: ViTConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    cfg = self.config
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    tokens = PatchEmbed(cfg.patch_size, cfg.d_model, **types, name='patch_embed')(x)  # [B, N, D]
    b = tokens.shape[0]
    cls = self.param('cls', nn.initializers.zeros, (1, 1, cfg.d_model), self.param_dtype)
    cls = jnp.broadcast_to(cls.astype(self.dtype), (b, 1, cfg.d_model))
    tokens = jnp.concatenate([cls, tokens], axis=1)  # [B, 1 + N, D]
    y = transformer.Transformer(cfg.stack(), **types, name='encoder')(tokens, train=train)
    return y[:, 0]  # the [CLS] position


def vit_flops(cfg: ViTConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [H, W, C] image: patch projection, then the encoder over
  1 + N tokens."""
  c = shape[2]
  n = num_patches(shape, cfg.patch_size)
  patches = n * registry.dense_flops(cfg.patch_size**2 * c, cfg.d_model)
  return patches + transformer.transformer_flops(cfg.stack(), (n + 1, cfg.d_model))


registry.register(registry.ArchSpec(
    name='vit', family='attention',
    description='Vision Transformer: patch embedding, [CLS] token, pre-LN encoder',
    module=ViT, config_for_width=lambda w: ViTConfig(d_model=w),
    input_kind='image', causal=False, flops=vit_flops, width_step=4,
    depth_fields=('num_layers',), search_space=registry.DROPOUT_SPACE))
