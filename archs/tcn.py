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
  see 253 steps.
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
  """
  features: int
  kernel_size: int
  dilation: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, d, t = self.kernel_size, self.dilation, x.shape[1]
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (k, x.shape[-1], self.features), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,),
                      self.param_dtype)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    padded = jnp.pad(x, ((0, 0), ((k - 1) * d, 0), (0, 0)))  # [B, (k-1)d + T, C_in]
    # Tap j's window starts j*d steps into the padded sequence; taps that would read only
    # padding (j*d >= T) are skipped rather than multiplied by zeros.
    taps = [padded[:, j * d: j * d + t] @ kernel[j] for j in range(k) if (k - 1 - j) * d < t]
    return sum(taps) + bias


class TemporalBlock(nn.Module):
  """One residual block: [B, T, C_in] -> [B, T, features]; with `train=True`, dropout at
  rate `dropout` after each convolution's ReLU."""
  features: int
  kernel_size: int
  dilation: int
  weight_norm: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}

    def conv(name):
      layer = CausalConv(self.features, self.kernel_size, self.dilation, **types, name=name)
      # WeightNorm's own dtype stays None: it normalises the float32 parameters, and the
      # convolution casts the result.
      return (nn.WeightNorm(layer, param_dtype=self.param_dtype, name=f'{name}_wn')
              if self.weight_norm else layer)

    # No parameters, and the identity at rate 0 or in evaluation (no RNG drawn).
    drop = nn.Dropout(self.dropout, deterministic=not train, name='dropout')
    x = x.astype(self.dtype)  # the residual path's dtype
    y = drop(nn.relu(conv('conv1')(x)))
    y = drop(nn.relu(conv('conv2')(y)))
    residual = x
    if x.shape[-1] != self.features:  # a 1x1 convolution matches the widths
      residual = nn.Conv(self.features, (1,), **types, name='residual')(x)
    return nn.relu(y + residual)


class TCN(nn.Module):
  """[B, T, D] -> [B, T, D]; causal by construction."""
  config: TCNConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    cfg = self.config
    for i, features in enumerate(cfg.widths()):
      x = TemporalBlock(features, cfg.kernel_size, 2**i, cfg.weight_norm, self.dtype,
                        self.param_dtype, cfg.dropout, name=f'block_{i}')(x, train=train)
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


# ---------------------------------------------------------------------------------------
# Token-by-token decoding: a sliding buffer per convolution.
#
# Output t of a dilated causal convolution reads inputs t - (k-1)d .. t, so a step keeps
# the last (k-1)d inputs of each convolution and costs O(receptive field) whatever the
# position, where a whole-sequence call to produce token t would cost O(t).

class _ConvWeights(nn.Module):
  """A CausalConv's parameters without its call, (kernel, bias), so that `nn.WeightNorm`
  can normalise them exactly as it does around the convolution."""
  kernel_shape: tuple[int, ...]

  @nn.compact
  def __call__(self):
    kernel = self.param('kernel', nn.initializers.lecun_normal(), self.kernel_shape)
    bias = self.param('bias', nn.initializers.zeros_init(), self.kernel_shape[-1:])
    return kernel, bias


class _BlockWeights(nn.Module):
  """The (kernel, bias) of a block's two convolutions as its call uses them: through
  `nn.WeightNorm` (its parameters at conv<i>_wn) when the config asks for it."""
  shapes: tuple[tuple[int, ...], tuple[int, ...]]
  weight_norm: bool

  @nn.compact
  def __call__(self):
    weights = {}
    for name, shape in zip(('conv1', 'conv2'), self.shapes):
      layer = _ConvWeights(shape, name=name)
      weights[name] = nn.WeightNorm(layer, name=f'{name}_wn')() if self.weight_norm else layer()
    return weights


def init_cache(cfg: TCNConfig, batch: int, max_length: int) -> tuple:
  """Per block, the last (k-1) * 2^i inputs of each of its two convolutions [B, span, C]:
  zeros, the left padding of the whole-sequence call. The size is the receptive field's,
  not max_length's."""
  del max_length  # a convolution forgets everything beyond its receptive field
  buffers, c_in = [], cfg.channels
  for i, c in enumerate(cfg.widths()):
    span = (cfg.kernel_size - 1) * 2**i
    buffers.append({'conv1': jnp.zeros((batch, span, c_in), jnp.float32),
                    'conv2': jnp.zeros((batch, span, c), jnp.float32)})
    c_in = c
  return tuple(buffers)


def _conv_step(kernel, bias, buffer, x_t, dilation: int):
  """CausalConv at one position: the window [B, (k-1)d + 1, C_in] is the buffer then x_t;
  tap j reads window[j * d] (= x[t - (k-1-j) d]). The k taps go through one matmul (one
  [B, k C_in] x [k C_in, C_out] product instead of k small ones: ~3x faster per step on
  CPU, the same sum up to float rounding), in x_t's dtype. Returns (next buffer,
  [B, C_out])."""
  window = jnp.concatenate([buffer, x_t[:, None].astype(buffer.dtype)], axis=1)
  k, c_in, c_out = kernel.shape
  taps = window[:, ::dilation].reshape(window.shape[0], k * c_in)  # [B, k C_in], tap-major
  taps, kernel, bias = nn.dtypes.promote_dtype(taps, kernel, bias, dtype=x_t.dtype)
  return window[:, 1:], taps @ kernel.reshape(k * c_in, c_out) + bias


def _block_step(cfg: TCNConfig, params, buffers: dict, x_t, dilation: int):
  """`TemporalBlock` at one position: x_t [B, C_in] -> (buffers, [B, features])."""
  shapes = (params['conv1']['kernel'].shape, params['conv2']['kernel'].shape)
  weights = _BlockWeights(shapes, cfg.weight_norm).apply({'params': params})
  conv1, y = _conv_step(*weights['conv1'], buffers['conv1'], x_t, dilation)
  conv2, y = _conv_step(*weights['conv2'], buffers['conv2'], nn.relu(y), dilation)
  residual = x_t
  if 'residual' in params:  # the block's 1x1 convolution, where the widths differ
    features = params['residual']['kernel'].shape[-1]
    residual = nn.Conv(features, (1,), dtype=x_t.dtype).apply({'params': params['residual']},
                                                              x_t[:, None])[:, 0]
  return {'conv1': conv1, 'conv2': conv2}, nn.relu(nn.relu(y) + residual)


def decode_step(cfg: TCNConfig, params, cache: tuple, x_t):
  """One position through every block: x_t [B, D] -> (cache, y_t [B, D]), equal to that
  position of `TCN(cfg, dtype=x_t.dtype).apply({'params': params}, x)`. With weight
  normalisation the kernels are renormalised every step (O(parameters)), as every
  whole-sequence call does."""
  new_cache = []
  for i, buffers in enumerate(cache):
    buffers, x_t = _block_step(cfg, params[f'block_{i}'], buffers, x_t, 2**i)
    new_cache.append(buffers)
  return tuple(new_cache), x_t


registry.register(registry.ArchSpec(
    name='tcn', family='convolution',
    description='TCN (Bai et al. 2018): residual blocks of dilated causal 1-D convs',
    module=TCN, config_for_width=lambda w: TCNConfig(channels=w),
    input_kind='sequence', causal=True, flops=tcn_flops, width_step=1, uses_scan=False,
    backward_factor=2.25,
    details=lambda cfg: {'receptive field': receptive_field(cfg)},
    depth_fields=('num_blocks',),
    decoding=registry.Decoding(init=init_cache, step=decode_step)))
