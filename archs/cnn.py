"""2-D convolutional network for images: conv blocks, pooling, then dense layers."""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from archbench.archs import registry


@dataclasses.dataclass(frozen=True)
class CNNConfig:
  """`stages` blocks of two 3x3 convs (channels doubling per stage), each followed by 2x2
  max pooling; then global average pooling and a dense layer of width `4 * channels`."""
  channels: int = 32
  stages: int = 2
  kernel: int = 3

  @property
  def width(self) -> int:  # the [B, D] output
    return 4 * self.channels

  def stage_channels(self) -> list[int]:
    return [self.channels * 2**i for i in range(self.stages)]


class CNN(nn.Module):
  """[B, H, W, C] -> [B, D]."""
  config: CNNConfig

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    cfg = self.config
    k = (cfg.kernel, cfg.kernel)
    for c in cfg.stage_channels():
      x = nn.relu(nn.Conv(c, k, padding='SAME')(x))
      x = nn.relu(nn.Conv(c, k, padding='SAME')(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')
    x = jnp.mean(x, axis=(1, 2))  # global average pool: [B, H', W', C'] -> [B, C']
    return nn.relu(nn.Dense(cfg.width)(x))


def same_conv_taps(n: int, k: int) -> int:
  """Kernel taps that land inside a length-n axis, summed over the n outputs of a 'SAME'
  convolution (the padding taps multiply zeros; XLA does not count them, nor do we)."""
  left = (k - 1) // 2
  return sum(min(n, i - left + k) - max(0, i - left) for i in range(n))


def cnn_flops(cfg: CNNConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [H, W, C] image: convolutions over in-image taps, bias and ReLU
  per output element, 3 comparisons per 2x2 max-pool output, the average pool, the dense
  layer."""
  h, w, c_in = shape
  flops = 0.0
  for c in cfg.stage_channels():
    taps = same_conv_taps(h, cfg.kernel) * same_conv_taps(w, cfg.kernel)
    for _ in range(2):
      flops += 2.0 * taps * c_in * c + 2 * h * w * c  # conv, bias, ReLU
      c_in = c
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
