"""2-D convolutional network for images: conv blocks, pooling, then dense layers.

Precision: `dtype` is the computation dtype (convolutions, activations, the dense layer),
`param_dtype` the parameters'; the global average pool sums in float32 (jnp.mean upcasts).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from archbench.archs import registry


@dataclasses.dataclass(frozen=True)
class CNNConfig:
  """`stages` blocks of two 3x3 convs (channels doubling per stage), each followed by 2x2
  max pooling (`pool` False: none, every stage at full resolution, the same parameters);
  then global average pooling and a dense layer of width `4 * channels`."""
  channels: int = 32
  stages: int = 2
  kernel: int = 3
  pool: bool = True

  @property
  def width(self) -> int:  # the [B, D] output
    return 4 * self.channels

  def stage_channels(self) -> list[int]:
    return [self.channels * 2**i for i in range(self.stages)]


_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _same_padding(k: int) -> tuple[int, int]:
  """'SAME' padding of a stride-1 axis with a k-tap kernel: (before, after)."""
  return (k - 1) // 2, k - 1 - (k - 1) // 2


@jax.custom_vjp
def conv_same(x, kernel):
  """Stride-1 'SAME' convolution, x [B, H, W, C] with kernel [kh, kw, C, C'] -> [B, H, W, C']:
  `lax.conv_general_dilated` forward, and a backward pass written for XLA:CPU.

  XLA's own gradient convolutions run on CPU far below its forward one (the weight
  gradient, a convolution whose window is the whole image, 5.5x the forward's time at
  28x28x32; and inside a `lax.scan` over training steps both gradients fall back to a
  naive loop, 6x slower again). Here the input gradient is a forward-form convolution of
  the output gradient with the flipped kernel, and the weight gradient one
  [C, B*H*W] x [B*H*W, C'] matmul per kernel tap. The same maths (tested against autodiff).
  """
  return _conv(x, kernel)


def _conv(x, kernel, padding=None):
  kh, kw = kernel.shape[:2]
  padding = padding or (_same_padding(kh), _same_padding(kw))
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC)


def _conv_same_fwd(x, kernel):
  return _conv(x, kernel), (x, kernel)


def _conv_same_bwd(residuals, d_y):
  x, kernel = residuals
  kh, kw, c_in, c_out = kernel.shape
  (top, bottom), (left, right) = _same_padding(kh), _same_padding(kw)
  # d_x: the transposed convolution, i.e. d_y convolved with the kernel flipped in space
  # and its channel axes swapped, padded by the taps that fell outside on the other side.
  flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)  # [kh, kw, C', C]
  d_x = _conv(d_y, flipped, ((bottom, top), (right, left)))
  # d_kernel[i, j] = sum over b, h, w of x_padded[b, h + i, w + j, :]^T d_y[b, h, w, :].
  b, h, w, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  rows = d_y.reshape(b * h * w, c_out)
  contract_rows = (((0,), (0,)), ((), ()))  # [N, C] x [N, C'] -> [C, C'], no transpose
  # Each tap sums B*H*W products: accumulated in float32 whatever the inputs' dtype.
  taps = [jax.lax.dot_general(padded[:, i:i + h, j:j + w, :].reshape(b * h * w, c_in), rows,
                              contract_rows, preferred_element_type=jnp.float32)
          for i in range(kh) for j in range(kw)]
  return d_x, jnp.stack(taps).reshape(kh, kw, c_in, c_out).astype(kernel.dtype)


conv_same.defvjp(_conv_same_fwd, _conv_same_bwd)


class Conv(nn.Module):
  """`nn.Conv(features, kernel, padding='SAME')` (its parameters, initialisers and maths)
  through `conv_same`, computing in `dtype`."""
  features: int
  kernel_size: tuple[int, int]
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,),
                      self.param_dtype)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return conv_same(x, kernel) + bias


def max_pool_2x2(x):
  """2x2 max pooling, stride 2, 'SAME' (an odd side padded with -inf), as a reshape and a
  max: [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C].

  `nn.max_pool`'s gradient is a select-and-scatter, which XLA:CPU runs about 10x slower
  than this max's (40 ms against the forward's 4 at B128 28x28x32). Where a window holds
  several equal maxima, this gradient splits among them while select-and-scatter picks
  one; after a ReLU such ties are zeros, whose gradient the ReLU stops either way.
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
  return x.reshape(b, x.shape[1] // 2, 2, x.shape[2] // 2, 2, c).max(axis=(2, 4))


class CNN(nn.Module):
  """[B, H, W, C] -> [B, D]."""
  config: CNNConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    cfg = self.config
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    k = (cfg.kernel, cfg.kernel)
    for c in cfg.stage_channels():
      x = nn.relu(Conv(c, k, **types)(x))
      x = nn.relu(Conv(c, k, **types)(x))
      if cfg.pool:
        x = max_pool_2x2(x)
    x = jnp.mean(x, axis=(1, 2))  # global average pool: [B, H', W', C'] -> [B, C']
    return nn.relu(nn.Dense(cfg.width, **types)(x))


def same_conv_taps(n: int, k: int) -> int:
  """Kernel taps that land inside a length-n axis, summed over the n outputs of a 'SAME'
  convolution (the padding taps multiply zeros; XLA does not count them, nor do we)."""
  left = (k - 1) // 2
  return sum(min(n, i - left + k) - max(0, i - left) for i in range(n))


def cnn_flops(cfg: CNNConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [H, W, C] image: convolutions over in-image taps, bias and ReLU
  per output element, 3 comparisons per 2x2 max-pool output (with `pool`), the average
  pool, the dense layer."""
  h, w, c_in = shape
  flops = 0.0
  for c in cfg.stage_channels():
    taps = same_conv_taps(h, cfg.kernel) * same_conv_taps(w, cfg.kernel)
    for _ in range(2):
      flops += 2.0 * taps * c_in * c + 2 * h * w * c  # conv, bias, ReLU
      c_in = c
    if cfg.pool:
      h, w = -(-h // 2), -(-w // 2)
      flops += h * w * c * 3  # 2x2 max pool
  flops += h * w * c_in  # global average pool
  flops += registry.dense_flops(c_in, cfg.width) + cfg.width
  return flops


registry.register(registry.ArchSpec(
    name='cnn', family='convolution',
    description='2-D CNN: conv blocks with max pooling, global average pool, dense',
    module=CNN, config_for_width=lambda w: CNNConfig(channels=w),
    input_kind='image', causal=False, flops=cnn_flops, depth_fields=('stages',)))
