"""Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences"), stacked with pre-norm GLU blocks.

Each unit is a diagonal complex linear recurrence over a state of N = `d_state` modes,

    x_t = λ ⊙ x_{t-1} + γ ⊙ (B u_t),        y_t = Re(C x_t) + D ⊙ u_t,

with λ = exp(-exp(ν_log) + i exp(θ_log)), so |λ| < 1 for any parameter values, and
γ = exp(γ_log), initialised to sqrt(1 - |λ|²) so that white-noise inputs keep unit state
variance however close |λ| is to 1. Because the recurrence is linear it is evaluated for
all T at once by `jax.lax.associative_scan` (log T depth, no while loop); the nonlinearity
lives between the units (GELU, then a GLU), as in the paper.

Complex numbers are carried as (real, imaginary) pairs of float32 arrays: XLA's
cost_analysis counts a complex multiply as one FLOP, real pairs make it count the six real
FLOPs actually spent, and real arrays run on every backend (TPUs included) and dtype.

Precision: in bfloat16 (`dtype`) only the matmuls are bf16 (the input projection B, the
readout C, the GLU) along with the activations between blocks; the recurrence itself (λ,
the scan, the state x) stays float32 in every precision. bf16 complex numbers do not
exist, and |λ| close to 1 (up to 0.999) needs float32: in bf16, 0.999 rounds to 1.0 and a
decaying memory becomes an undamped one.

Shapes: B batch, T time, H model width (`d_model`, the harness's D), N complex state modes.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from archbench.archs import registry
from archbench.archs.transformer import layer_norm_flops


@dataclasses.dataclass(frozen=True)
class LRUConfig:
  """A stack of `num_layers` LRU blocks of width `d_model`, each with `d_state` complex modes.

  The eigenvalue init follows the paper: |λ| uniform on the ring r_min <= |λ| <= r_max (by
  area, i.e. |λ|² uniform), phase uniform in [0, max_phase]. The defaults (0.9, 0.999, 2π)
  are the LRU reference settings for sequential CIFAR: memories of roughly 10 to 1000 steps
  at init and every frequency, a general-purpose start for this suite's mix of short and
  long tasks. For the hardest long-range tasks (PathX) the paper narrows the phase to
  [0, π/10], so that modes start as slow, low-frequency integrators; pass `max_phase` (and a
  larger r_min) through a suite's overrides for those.
  """
  d_model: int = 64
  d_state: int = 32
  num_layers: int = 4
  r_min: float = 0.9
  r_max: float = 0.999
  max_phase: float = 2 * math.pi

  @property
  def width(self) -> int:
    return self.d_model


def config_for_width(width: int) -> LRUConfig:
  # N = H/2 complex modes hold H real numbers of state, as an H-wide real RNN does; it is
  # also the ratio of the reference minimal-LRU configurations.
  return LRUConfig(d_model=width, d_state=max(1, width // 2))


# ---------------------------------------------------------------------------------------
# Initialisers (paper, section 3 and appendix A).

def _nu_log_init(r_min: float, r_max: float):
  def init(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape, dtype)
    # Uniform by area on the ring: |λ|² ~ U[r_min², r_max²]; |λ| = exp(-exp(ν_log)).
    r2 = u * (r_max ** 2 - r_min ** 2) + r_min ** 2
    return jnp.log(-0.5 * jnp.log(r2))
  return init


def _theta_log_init(max_phase: float):
  def init(key, shape, dtype=jnp.float32):
    u = 1.0 - jax.random.uniform(key, shape, dtype)  # (0, 1]: keeps log() finite
    return jnp.log(max_phase * u)
  return init


def _gamma_log_init(key, nu_log):
  # γ = sqrt(1 - |λ|²) with |λ|² = exp(-2 exp(ν_log)); expm1 keeps precision near |λ| = 1.
  del key
  return 0.5 * jnp.log(-jnp.expm1(-2.0 * jnp.exp(nu_log)))


def eigenvalues(nu_log, theta_log):
  """λ as (real, imaginary) from the exponential parametrisation; |λ| = exp(-exp(ν_log))."""
  modulus = jnp.exp(-jnp.exp(nu_log))
  phase = jnp.exp(theta_log)
  return modulus * jnp.cos(phase), modulus * jnp.sin(phase)


def _combine(earlier, later):
  """Compose two steps of x -> a x + b (complex, as real pairs): `earlier` then `later`.

  (a2, b2) ∘ (a1, b1) = (a2 a1, a2 b1 + b2). Associative, so `associative_scan` may group
  the T steps in any tree; after the scan, b at position t is the state x_t from x_{-1} = 0.
  """
  a1r, a1i, b1r, b1i = earlier
  a2r, a2i, b2r, b2i = later
  return (a2r * a1r - a2i * a1i, a2r * a1i + a2i * a1r,
          a2r * b1r - a2i * b1i + b2r, a2r * b1i + a2i * b1r + b2i)


# ---------------------------------------------------------------------------------------
# Modules.

class LinearRecurrentUnit(nn.Module):
  """One LRU: [B, T, H] -> [B, T, H], linear and causal; `step` advances one token. The
  projections compute in `dtype`, the recurrence and its state in float32."""
  d_model: int
  d_state: int
  r_min: float
  r_max: float
  max_phase: float
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    h, n = self.d_model, self.d_state
    # λ's and γ's parameters are float32 whatever param_dtype is: the recurrence is.
    self.nu_log = self.param('nu_log', _nu_log_init(self.r_min, self.r_max), (n,))
    self.theta_log = self.param('theta_log', _theta_log_init(self.max_phase), (n,))
    self.gamma_log = self.param('gamma_log', _gamma_log_init, self.nu_log)
    # Paper's scales: B entries N(0, 1/(2H)) per part so E|B u|² ≈ |u|²/H per mode; C
    # entries N(0, 1/N) per part so the N modes sum to O(1) outputs; D ~ N(0, 1).
    b_init = nn.initializers.normal(1.0 / math.sqrt(2 * h))
    c_init = nn.initializers.normal(1.0 / math.sqrt(n))
    self.B_re = self.param('B_re', b_init, (h, n), self.param_dtype)
    self.B_im = self.param('B_im', b_init, (h, n), self.param_dtype)
    self.C_re = self.param('C_re', c_init, (n, h), self.param_dtype)
    self.C_im = self.param('C_im', c_init, (n, h), self.param_dtype)
    self.D = self.param('D', nn.initializers.normal(1.0), (h,), self.param_dtype)

  def _drive(self, u):
    """γ ⊙ (B u) as (real, imaginary): [..., H] -> 2 x [..., N], a `dtype` matmul whose
    result enters the recurrence as float32."""
    gamma = jnp.exp(self.gamma_log)
    # Normalising B (N x H numbers) rather than B u (N per token) is cheaper for T*B > H.
    u, b_re, b_im = nn.dtypes.promote_dtype(u, self.B_re * gamma, self.B_im * gamma,
                                            dtype=self.dtype)
    return (u @ b_re).astype(jnp.float32), (u @ b_im).astype(jnp.float32)

  def _readout(self, x_re, x_im, u):
    """Re(C x) + D ⊙ u: Re((C_re + i C_im)(x_re + i x_im)) = C_re x_re - C_im x_im, in
    `dtype`."""
    x_re, x_im, u, c_re, c_im, d = nn.dtypes.promote_dtype(
        x_re, x_im, u, self.C_re, self.C_im, self.D, dtype=self.dtype)
    return x_re @ c_re - x_im @ c_im + d * u

  def __call__(self, u):
    lam_re, lam_im = eigenvalues(self.nu_log, self.theta_log)
    bu_re, bu_im = self._drive(u)  # [B, T, N] each
    # Every step multiplies by the same λ; the scan composes (λ-power, state) pairs.
    a_re = jnp.broadcast_to(lam_re, bu_re.shape)
    a_im = jnp.broadcast_to(lam_im, bu_im.shape)
    _, _, x_re, x_im = jax.lax.associative_scan(_combine, (a_re, a_im, bu_re, bu_im), axis=1)
    return self._readout(x_re, x_im, u)

  def step(self, state, u_t):
    """state (x_re, x_im) [B, N] each, u_t [B, H] -> (new state, y_t [B, H])."""
    lam_re, lam_im = eigenvalues(self.nu_log, self.theta_log)
    x_re, x_im = state
    bu_re, bu_im = self._drive(u_t)
    x_re, x_im = (lam_re * x_re - lam_im * x_im + bu_re,
                  lam_re * x_im + lam_im * x_re + bu_im)
    return (x_re, x_im), self._readout(x_re, x_im, u_t)


class LRUBlock(nn.Module):
  """Pre-norm residual block: x + GLU(GELU(LRU(LayerNorm(x)))).

  The GELU and the GLU are the model's only nonlinearities: without them a stack of LRUs
  collapses into one linear filter.
  """
  config: LRUConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    cfg = self.config
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    self.norm = nn.LayerNorm(**types)
    self.lru = LinearRecurrentUnit(cfg.d_model, cfg.d_state, cfg.r_min, cfg.r_max,
                                   cfg.max_phase, **types)
    self.glu = nn.Dense(2 * cfg.d_model, **types)  # value and gate in one matmul

  def _mix(self, h):
    value, gate = jnp.split(self.glu(nn.gelu(h)), 2, axis=-1)
    return value * jax.nn.sigmoid(gate)

  def __call__(self, x):
    return x + self._mix(self.lru(self.norm(x)))

  def step(self, state, x_t):
    state, h = self.lru.step(state, self.norm(x_t))
    return state, x_t + self._mix(h)


class LRU(nn.Module):
  """[B, T, H] -> [B, T, H]; causal by construction. No dropout (the harness passes no
  dropout RNG), so `train` changes nothing. `step` advances one token through the same
  blocks, from the state of `initial_carry`."""
  config: LRUConfig
  dtype: Any = jnp.float32  # computation (see the module docstring on precision)
  param_dtype: Any = jnp.float32

  def setup(self):
    types = {'dtype': self.dtype, 'param_dtype': self.param_dtype}
    self.blocks = [LRUBlock(self.config, **types) for _ in range(self.config.num_layers)]
    # The pre-norm residual stream is never normalised otherwise.
    self.final_norm = nn.LayerNorm(**types)

  def __call__(self, x, *, train: bool = False):
    del train
    x = x.astype(self.dtype)  # the residual stream's dtype
    for block in self.blocks:
      x = block(x)
    return self.final_norm(x)

  @nn.nowrap
  def initial_carry(self, batch: int):
    """Zero state for every layer: a tuple of (x_re, x_im), each [batch, d_state] float32."""
    zeros = jnp.zeros((batch, self.config.d_state), jnp.float32)
    return tuple((zeros, zeros) for _ in range(self.config.num_layers))

  def step(self, carry, x_t):
    """One token through every layer: x_t [B, H] -> (new carry, y_t [B, H]); the state
    stays float32."""
    x_t = x_t.astype(self.dtype)
    new_carry = []
    for block, state in zip(self.blocks, carry):
      state, x_t = block.step(state, x_t)
      new_carry.append(state)
    return tuple(new_carry), self.final_norm(x_t)


# ---------------------------------------------------------------------------------------
# FLOPs.

_CMUL, _CMUL_ADD = 6, 8  # real FLOPs of a complex a*b, and of a*b + c


def scan_flops(length: int) -> float:
  """Real FLOPs per state mode of `associative_scan(_combine, ...)` over `length` steps,
  counting what its recursion evaluates once the unused outputs (the final λ-powers, which
  we discard) are dead-code eliminated:

    up-sweep   floor(n/2) pair combines; their λ-products are needed only if the next
               level still combines (floor(n/2) >= 2)
    down-sweep floor((n-1)/2) combines of the state part only
    interleave the two state arrays, n adds each (pad + add)

  then the same on the floor(n/2) combined pairs. About 20-25 FLOPs per step, not the 8 of
  a sequential loop: the price of log-depth parallelism.
  """
  flops, n = 0, length
  while n >= 2:
    pairs = n // 2
    flops += pairs * (_CMUL_ADD + (_CMUL if pairs >= 2 else 0))
    flops += (n - 1) // 2 * _CMUL_ADD
    flops += 2 * n
    n = pairs
  return float(flops)


def lru_flops(cfg: LRUConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [T, H] sequence. Parameter-only work (λ, γ·B), O(N H) per call
  and independent of T and batch, is left out."""
  t, h = shape
  n = cfg.d_state
  per_token = (layer_norm_flops(h)
               + 2 * registry.dense_flops(h, n, bias=False)  # B_re u, B_im u
               + 2 * registry.dense_flops(n, h, bias=False) + h  # C_re x_re - C_im x_im
               + 2 * h  # + D ⊙ u
               + 8 * h  # GELU (tanh approximation)
               + registry.dense_flops(h, 2 * h)  # GLU value and gate
               + 3 * h + h  # sigmoid, product
               + h)  # residual
  per_layer = t * per_token + n * scan_flops(t)
  return cfg.num_layers * per_layer + t * layer_norm_flops(h)


registry.register(registry.ArchSpec(
    name='lru', family='linear recurrence',
    description='Linear Recurrent Unit (Orvieto et al. 2023), pre-norm GLU blocks, '
                'associative scan',
    module=LRU, config_for_width=config_for_width, input_kind='sequence', causal=True,
    flops=lru_flops, width_step=2, uses_scan=False,
    backward_factor=2.5,  # the scan's and the GLU's derivatives weigh in
    depth_fields=('num_layers',), decoding=registry.Decoding.STEP))
