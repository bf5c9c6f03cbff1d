"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?") as an archbench plug-in: a
complete architecture in one file, written in Flax NNX.

    z_t = sigmoid(W_z x_t + b_z)    c_t = W_c x_t + b_c    h_t = (1 - z_t) * h_{t-1} + z_t * c_t

The gates read the input only, never the state, so both projections run for the whole
sequence as one matmul and only the elementwise recurrence h_t = a_t h_{t-1} + b_t is
scanned: the trick that makes minGRU (and Mamba, the LRU, ...) fast to train. Each layer is
pre-norm residual with an output projection. Its `step` method runs one token through the
same layers (O(1) state), so it generates token by token as the built-in recurrences do.

  archbench run --plugin examples/mingru.py --suite smoke        # with every built-in
  archbench run --plugin examples/mingru.py --archs mingru,gru --tasks adding,copy
  pytest --plugin examples/mingru.py                             # the registry's tests

Registering it is all it takes: archbench sizes `d_model` to each parameter budget, counts
its FLOPs with `mingru_flops` (checked against XLA by the tests), sets its depth through
`num_layers`, runs it on every task a causal sequence model can serve, and samples text
through `initial_carry` and `step` (`decoding=Decoding.STEP`). Its `dtype`
keyword (the computation dtype, Flax's convention) lets it run in bfloat16 too; the
recurrence's state stays float32.
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from archbench import archs
from archbench.archs.registry import Decoding, dense_flops


@dataclasses.dataclass(frozen=True)
class MinGRUConfig:
  d_model: int = 64
  num_layers: int = 2
  unroll: bool = False  # unroll the time scan (lets XLA's cost analysis count every step)

  @property
  def width(self) -> int:  # the D the backbone maps [B, T, D] -> [B, T, D] at
    return self.d_model


class MinGRULayer(nnx.Module):
  def __init__(self, d: int, unroll: bool, *, dtype, rngs: nnx.Rngs):
    self.norm = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
    self.gates = nnx.Linear(d, 2 * d, dtype=dtype, rngs=rngs)  # z and c, one matmul
    self.out = nnx.Linear(d, d, dtype=dtype, rngs=rngs)
    self.unroll = unroll

  def _coefficients(self, x):  # [..., D] -> a, b of h_t = a_t * h_{t-1} + b_t
    z, c = jnp.split(self.gates(self.norm(x)), 2, axis=-1)
    z = jax.nn.sigmoid(z)
    return 1.0 - z, z * c

  def __call__(self, x):  # [B, T, D] -> [B, T, D]
    def step(h, ab):
      h = ab[0] * h + ab[1]
      return h, h

    a, b = self._coefficients(x)
    time_major = (a.swapaxes(0, 1), b.swapaxes(0, 1))  # [T, B, D]
    h0 = jnp.zeros(x[:, 0].shape, jnp.float32)  # a float32 state, whatever the dtype
    _, h = jax.lax.scan(step, h0, time_major, unroll=x.shape[1] if self.unroll else 1)
    return x + self.out(h.swapaxes(0, 1))

  def step(self, h, x_t):  # state [B, D] (float32), x_t [B, D] -> (state, [B, D])
    a, b = self._coefficients(x_t)
    h = a * h + b
    return h, x_t + self.out(h)


class MinGRU(nnx.Module):
  """[B, T, D] -> [B, T, D]; causal by construction."""

  def __init__(self, config: MinGRUConfig, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.d_model = config.d_model
    self.layers = nnx.List([MinGRULayer(config.d_model, config.unroll, dtype=dtype, rngs=rngs)
                            for _ in range(config.num_layers)])
    self.final_norm = nnx.LayerNorm(config.d_model, dtype=dtype, rngs=rngs)

  def __call__(self, x, *, train: bool = False):
    for layer in self.layers:
      x = layer(x)
    return self.final_norm(x)

  def initial_carry(self, batch: int):  # the zero state of every layer, float32
    return tuple(jnp.zeros((batch, self.d_model), jnp.float32) for _ in self.layers)

  def step(self, carry, x_t):  # one token, x_t [B, D] -> (carry, y_t [B, D])
    new_carry = []
    for layer, h in zip(self.layers, carry):
      h, x_t = layer.step(h, x_t)
      new_carry.append(h)
    return tuple(new_carry), self.final_norm(x_t)


def mingru_flops(cfg: MinGRUConfig, shape) -> float:
  """Forward FLOPs of one [T, D] sequence: per layer and token a layer norm (~8 D), the
  fused gate projection, the sigmoid (~4 D), a = 1 - z and b = z * c (2 D), the
  recurrence (2 D), the output projection and the residual (D)."""
  t, d = shape
  layer_norm = 8 * d
  per_token = layer_norm + dense_flops(d, 2 * d) + 4 * d + 2 * d + 2 * d + dense_flops(d, d) + d
  return t * (cfg.num_layers * per_token + layer_norm)


archs.register(archs.ArchSpec(
    name='mingru', family='linear recurrence',
    description='minGRU (Feng et al. 2024), input-only gates, scanned; a plug-in in NNX',
    module=MinGRU, config_for_width=lambda w: MinGRUConfig(d_model=w),
    input_kind='sequence', causal=True, flops=mingru_flops, uses_scan=True,
    backward_factor=2.1, depth_fields=('num_layers',), decoding=Decoding.STEP))
