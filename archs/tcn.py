"""Temporal convolutional network (Bai, Kolter & Koltun 2018): residual blocks of dilated
causal 1-D convolutions.

Block i holds two convolutions of kernel k and dilation 2^i. Each is padded on the left
only, by (k-1) * 2^i, so output t reads inputs <= t, and each is followed by a ReLU. The
block adds its input back (through a 1x1 convolution where the widths differ) and applies a
last ReLU, as the authors' reference code does. Weight normalisation is an option
(`weight_norm`), and so is dropout (`dropout`, training only): after each convolution's ReLU,
before the next convolution or the residual add, as in the reference code's TemporalBlock
(locuslab/TCN, TCN/tcn.py: conv, chomp, ReLU, dropout, twice). The paper speaks of spatial
dropout, but the code drops single elements (`nn.Dropout`), and so does this module.

Depth: an output sees only the last `receptive_field` steps of its input, so Bai et al.
choose the number of levels for each task so that it covers the sequence. The registry
entry declares that field; the harness gives a cell the fewest blocks that see its whole
input, narrower so that the parameter budget holds (`registry.ArchSpec.covering`), and a
suite that sets `num_blocks` itself is recorded as seeing part of its input where it does.

Precision: `dtype` is the computation dtype of the convolutions and activations,
`param_dtype` the parameters'; weight normalisation rescales the float32 parameters before
they are cast.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from archbench.archs import registry


@dataclasses.dataclass(frozen=True)
class TCNConfig:
  """`num_blocks` residual blocks, all `channels` wide unless `block_channels` gives each
  block's output width. The last block must come back to `channels`, so the backbone maps
  [B, T, D] -> [B, T, D] with D = channels.

  The receptive field is 1 + 2(k-1)(2^L - 1) for L blocks: the default 6 blocks of kernel 3
  see 253 steps, and a cell on a longer input gets more blocks (see the module docstring).
  """
  channels: int = 64
  num_blocks: int = 6
  kernel_size: int = 3
  block_channels: tuple[int, ...] | None = None
  # Weight normalisation (Salimans & Kingma 2016) on every convolution, as in the paper; off
  # by default, so the parameter and FLOP counts are those of plain convolutions.
  weight_norm: bool = False
  # Dropout rate after each convolution's ReLU, in training only (the reference code's
  # default is 0.2); 0 leaves the model unchanged.
  dropout: float = 0.0

  def __post_init__(self):
    if self.block_channels is not None:
      # Suite overrides arrive as lists; a tuple keeps the config hashable.
      object.__setattr__(self, 'block_channels', tuple(self.block_channels))
      if len(self.block_channels) != self.num_blocks:
        raise ValueError(f'block_channels has {len(self.block_channels)} entries for '
                         f'{self.num_blocks} blocks')
      if self.block_channels[-1] != self.channels:
        raise ValueError(f'the last block must be {self.channels} wide (channels), so that '
                         f'the backbone maps D -> D; got {self.block_channels[-1]}')
    if self.kernel_size < 1 or self.num_blocks < 1:
      raise ValueError('kernel_size and num_blocks must be positive')

  @property
  def width(self) -> int:
    return self.channels

  def widths(self) -> tuple[int, ...]:
    """Each block's output channels."""
    return self.block_channels or (self.channels,) * self.num_blocks


def receptive_field(config: TCNConfig) -> int:
  """How many input steps one output step sees: each of the 2L convolutions widens the
  window by (k-1) * dilation."""
  return 1 + 2 * (config.kernel_size - 1) * (2**config.num_blocks - 1)


class CausalConv(nn.Module):
  """Dilated causal 1-D convolution, [B, T, C_in] -> [B, T, features], as a sum of k
  shifted matmuls: tap j of output t reads x[t - (k-1-j) * dilation] (zeros before the
  start), the same maths and kernel layout [k, C_in, C_out] as a left-padded `nn.Conv`.

  Why not `nn.Conv`: XLA's CPU convolution with dilation is ~20x slower than these matmuls
  at the widths used here, which would measure XLA's conv kernel rather than the TCN.
  Matmuls are fast on every backend.

  Given `history` [B, (k-1)d, C_in], the inputs before x, it computes one position x
  [B, 1, C_in] of a sequence already under way (a decoding step): tap j reads
  window[j * d] of the window [B, (k-1)d + 1, C_in], history then x.
  """
  features: int
  kernel_size: int
  dilation: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, history=None):
    k, d, t = self.kernel_size, self.dilation, x.shape[1]
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (k, x.shape[-1], self.features), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,),
                      self.param_dtype)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    if history is not None:
      if t != 1:
        raise ValueError(f'a decoding step reads one position, got {t}')
      window = jnp.concatenate([history.astype(x.dtype), x], axis=1)
      # The k taps through one [B, k C_in] x [k C_in, C_out] matmul: ~3x faster per step on
      # CPU than k small ones, the same sum up to float rounding.
      taps = window[:, ::d].reshape(x.shape[0], k * x.shape[-1])  # tap-major
      return (taps @ kernel.reshape(-1, self.features) + bias)[:, None]
    padded = jnp.pad(x, ((0, 0), ((k - 1) * d, 0), (0, 0)))  # [B, (k-1)d + T, C_in]
    # Tap j's window starts j*d steps into the padded sequence; taps that would read only
    # padding (j*d >= T) are skipped rather than multiplied by zeros.
    taps = [padded[:, j * d: j * d + t] @ kernel[j] for j in range(k) if (k - 1 - j) * d < t]
    return sum(taps) + bias


class TemporalBlock(nn.Module):
  """One residual block: [B, T, C_in] -> [B, T, features]; with `train=True`, dropout at
  rate `dropout` after each convolution's ReLU.

  With `decode=True`, Flax's decode convention (archs/decoding.py): the call that creates
  the cache keeps, per convolution, a buffer of its last (k-1) * dilation inputs (zeros,
  the whole-sequence call's left padding; float32 in every precision); each later call
  reads one position [B, 1, C_in] through them and shifts it in. A step costs the
  receptive field's work whatever the position, where a whole-sequence call to produce
  position t costs O(t). The buffers sit here, not in the convolution, because
  `nn.WeightNorm` runs its layer with every variable collection read-only.
  """
  features: int
  kernel_size: int
  dilation: int
  weight_norm: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool = False, decode: bool = False):
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    stepping = decode and self.has_variable('cache', 'conv1_inputs')

    def conv(name, x):
      layer = CausalConv(self.features, self.kernel_size, self.dilation, **types, name=name)
      # WeightNorm's own dtype stays None: it normalises the float32 parameters, and the
      # convolution casts the result.
      if self.weight_norm:
        layer = nn.WeightNorm(layer, param_dtype=self.param_dtype, name=f'{name}_wn')
      if not decode:
        return layer(x)
      span = (self.kernel_size - 1) * self.dilation
      inputs = self.variable('cache', f'{name}_inputs', jnp.zeros,
                             (x.shape[0], span, x.shape[-1]), jnp.float32)
      if not stepping:
        return layer(x)
      y = layer(x, inputs.value)
      inputs.value = jnp.concatenate([inputs.value, x.astype(jnp.float32)], axis=1)[:, 1:]
      return y

    # No parameters, and the identity at rate 0 or in evaluation (no RNG drawn).
    drop = nn.Dropout(self.dropout, deterministic=not train, name='dropout')
    x = x.astype(self.dtype)  # the residual path's dtype
    y = drop(nn.relu(conv('conv1', x)))
    y = drop(nn.relu(conv('conv2', y)))
    residual = x
    if x.shape[-1] != self.features:  # a 1x1 convolution matches the widths
      residual = nn.Conv(self.features, (1,), **types, name='residual')(x)
    return nn.relu(y + residual)


class TCN(nn.Module):
  """[B, T, D] -> [B, T, D]; causal by construction. `decode` decodes token by token
  (`TemporalBlock`)."""
  config: TCNConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False, decode: bool = False):
    cfg = self.config
    for i, features in enumerate(cfg.widths()):
      x = TemporalBlock(features, cfg.kernel_size, 2**i, cfg.weight_norm, self.dtype,
                        self.param_dtype, cfg.dropout, name=f'block_{i}')(
          x, train=train, decode=decode)
    return x


def _conv_flops(t: int, c_in: int, c_out: int, kernel_size: int, dilation: int) -> float:
  """One CausalConv over T steps: a [T, C_in] x [C_in, C_out] matmul per tap that reads any
  real input, the sum of the taps, the bias (what XLA counts for it, exactly)."""
  taps = sum(1 for j in range(kernel_size) if j * dilation < t)
  return taps * 2.0 * t * c_in * c_out + (taps - 1) * t * c_out + t * c_out


def tcn_flops(cfg: TCNConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [T, D] sequence: two dilated convolutions per block, each with
  its ReLU, the 1x1 residual projection where widths change, the residual add and the last
  ReLU. The weight-norm rescaling (per call, not per example) is not counted."""
  t, c_in = shape
  flops = 0.0
  for i, c in enumerate(cfg.widths()):
    d = 2**i
    flops += _conv_flops(t, c_in, c, cfg.kernel_size, d) + t * c  # conv1, ReLU
    flops += _conv_flops(t, c, c, cfg.kernel_size, d) + t * c     # conv2, ReLU
    if c_in != c:
      flops += t * registry.dense_flops(c_in, c)  # 1x1 residual convolution
    flops += 2 * t * c  # residual add, ReLU
    c_in = c
  return flops


registry.register(registry.ArchSpec(
    name='tcn', family='convolution',
    description='TCN (Bai et al. 2018): residual blocks of dilated causal 1-D convs',
    module=TCN, config_for_width=lambda w: TCNConfig(channels=w),
    input_kind='sequence', causal=True, flops=tcn_flops, width_step=1, uses_scan=False,
    backward_factor=2.25,
    receptive_field=receptive_field, depth_fields=('num_blocks',),
    decoding=registry.Decoding.CACHE, search_space=registry.DROPOUT_SPACE))
