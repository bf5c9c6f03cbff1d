"""2-D convolutional network for images: conv blocks, pooling, then dense layers."""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from archs import registry


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


def cnn_flops(cfg: CNNConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [H, W, C] image: convolutions dominate; bias, ReLU and pooling
  are counted as one FLOP per element touched."""
  h, w, c_in = shape
  flops = 0.0
  for c in cfg.stage_channels():
    for _ in range(2):
      flops += h * w * (2.0 * cfg.kernel**2 * c_in * c + 2 * c)  # conv + bias + relu
      c_in = c
    h, w = -(-h // 2), -(-w // 2)
    flops += h * w * c * 4  # 2x2 max pool
  flops += h * w * c_in  # global average pool
  flops += registry.dense_flops(c_in, cfg.width) + cfg.width
  return flops


registry.register(registry.ArchSpec(
    name='cnn', family='convolution',
    description='2-D CNN: conv blocks with max pooling, global average pool, dense',
    module=CNN, config_for_width=lambda w: CNNConfig(channels=w),
    input_kind='image', causal=False, flops=cnn_flops))
