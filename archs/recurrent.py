"""Recurrent backbones: Elman RNN (tanh), LSTM and GRU, stacked, scanned with `nn.RNN`;
causal (`Recurrent`) or bidirectional (`BiRecurrent`).

Every layer runs under `lax.scan` (via `nn.RNN`), never a Python loop over time. Each step
computes its input projection inside the scan: hoisting all steps' input projections out
of the scan as one `[B*T, D] x [D, G*H]` matmul measured 1.2-1.5x slower on XLA:CPU (the
scan then slices a [T, B, G*H] buffer per step), so it is not done here. A causal stack's
`step` method advances all layers by one token through the cells its scans run, for
token-by-token inference and for the scan-equals-step test. A bidirectional stack has no
such step: each output needs the whole sequence.

Precision: in bfloat16 (`dtype`) the gate matmuls and each layer's outputs are bf16, but
the carries (h, and the LSTM's cell state c) stay float32: c is a running sum over all T
steps (c' = f c + i g), and bf16's 8-bit mantissa would round it at every step, losing
what a long-range task needs most. Flax's cells do not keep this on their own (an Elman
cell in bf16 returns a bf16 carry, which breaks the scan's carry type; LSTM and GRU
promote theirs to float32 but then emit float32 outputs), so the cells here cast the new
carry to float32 and the output to `dtype` (`_Float32Carry`).

Dropout (`dropout`, training only) acts between layers, on each layer's outputs except the
last's, never on the recurrent connection: the placement of PyTorch's `nn.LSTM(dropout=)`
and of Zaremba et al. 2014 ("Recurrent neural network regularization"), which keeps the
carry, and so the scan and the step, free of noise. A one-layer stack has no
dropout at all.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from archbench.archs import registry


class CellKind(str, enum.Enum):
  """The recurrent cell a stack is built of (its registry name is the value)."""
  ELMAN = 'rnn'
  LSTM = 'lstm'
  GRU = 'gru'


# Gate count: how many [D -> h] and [h -> h] projections each cell computes per step.
_GATES = {CellKind.ELMAN: 1, CellKind.LSTM: 4, CellKind.GRU: 3}


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
  cell: CellKind = CellKind.LSTM
  hidden: int = 64
  num_layers: int = 2
  # Fully unroll the scan: same maths, used to let XLA's cost_analysis count every step.
  unroll: bool = False
  # Dropout rate between layers, in training only (see the module docstring); 0 leaves the
  # model unchanged.
  dropout: float = 0.0

  @property
  def width(self) -> int:
    return self.hidden


class _Float32Carry:
  """Mixin for a Flax cell: the carry it returns is float32 and its output is in the cell's
  `dtype`, whatever dtype its gates computed in (see the module docstring). The cell's
  parameters and maths are unchanged; in float32 both casts are no-ops."""

  def __call__(self, carry, inputs):
    carry, y = super().__call__(carry, inputs)
    carry = jax.tree_util.tree_map(lambda c: c.astype(jnp.float32), carry)
    return carry, y.astype(self.dtype)


class ElmanCell(_Float32Carry, nn.SimpleCell):
  """nn.SimpleCell, h' = tanh(W_i x + b + W_h h), with a float32 carry."""


class LSTMCell(_Float32Carry, nn.OptimizedLSTMCell):
  """nn.OptimizedLSTMCell with a float32 carry: LSTMCell's maths and parameters, its four
  gates' kernels concatenated into one [H, 4H] matmul (nn.LSTMCell's four small ones
  measured 1.1x slower on XLA:CPU)."""


class GRUCell(_Float32Carry, nn.GRUCell):
  """nn.GRUCell with a float32 carry."""


_CELLS = {CellKind.ELMAN: ElmanCell, CellKind.LSTM: LSTMCell, CellKind.GRU: GRUCell}


def make_cell(cfg: RecurrentConfig | BiRecurrentConfig, dtype: Any = jnp.float32,
              param_dtype: Any = jnp.float32) -> nn.RNNCellBase:
  """An unbound cell (parent=None) computing in `dtype`, its carry float32. Created inside a
  module's compact method, a cell would bind to that module and register there as
  '<Cell>_i'; unbound, the `nn.RNN` it is given to adopts it, so its parameters sit at
  layer_i/cell."""
  return _CELLS[CellKind(cfg.cell)](cfg.hidden, dtype=dtype, param_dtype=param_dtype,
                                parent=None)


class Recurrent(nn.Module):
  """[B, T, D] -> [B, T, hidden]; causal by construction. `step` advances one token
  through the cells the scans run (layer_i/cell), from the carry of `initial_carry`."""
  config: RecurrentConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  def setup(self):
    cfg = self.config
    # unroll=True unrolls the whole scan, whatever its length.
    self.layers = [nn.RNN(make_cell(cfg, self.dtype, self.param_dtype),
                          unroll=True if cfg.unroll else 1, name=f'layer_{i}')
                   for i in range(cfg.num_layers)]
    self.dropouts = [_dropout(cfg, i) for i in range(1, cfg.num_layers)]

  def __call__(self, x, *, train: bool = False):
    for i, layer in enumerate(self.layers):
      if i:
        x = self.dropouts[i - 1](x, deterministic=not train)
      x = layer(x)
    return x

  @nn.nowrap
  def initial_carry(self, batch: int):
    """Zero state for every layer (what `nn.RNN` starts from), float32 in every precision."""
    cell = make_cell(self.config)
    return tuple(cell.initialize_carry(jax.random.PRNGKey(0), (batch, self.config.hidden))
                 for _ in range(self.config.num_layers))

  def step(self, carry, x_t):
    """One token through every layer: x_t [B, D] -> (new carry, y_t [B, hidden]); the carry
    stays float32."""
    new_carry = []
    for layer, c in zip(self.layers, carry):
      c, x_t = layer.cell(c, x_t)
      new_carry.append(c)
    return tuple(new_carry), x_t


def _dropout(cfg: RecurrentConfig | BiRecurrentConfig, i: int) -> nn.Dropout:
  """The dropout on layer i's input (i >= 1), the previous layer's outputs, at rate
  `cfg.dropout` in training; the stack's own input is left alone. No parameters, and the
  identity at rate 0 or in evaluation (no RNG drawn). Its name keys its random masks."""
  return nn.Dropout(cfg.dropout, name=f'dropout_{i}')


def cell_step_flops(cell: CellKind, d_in: int, h: int) -> float:
  """One step of one cell: the gate projections from the input and from the state, their
  biases, and a few elementwise ops per gate."""
  per_step = _GATES[cell] * (2.0 * d_in * h + 2.0 * h * h + 2 * h)  # matmuls, bias, sum
  mixing = {CellKind.ELMAN: 0, CellKind.LSTM: 3 * h, CellKind.GRU: 5 * h}[cell]  # gates mixed
  return per_step + mixing


def recurrent_flops(cfg: RecurrentConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [T, D] sequence through the causal stack."""
  t, d = shape
  flops = 0.0
  d_in = d
  for _ in range(cfg.num_layers):
    flops += t * cell_step_flops(cfg.cell, d_in, cfg.hidden)
    d_in = cfg.hidden
  return flops


# ---------------------------------------------------------------------------------------
# Bidirectional stacks.

@dataclasses.dataclass(frozen=True)
class BiRecurrentConfig:
  """A stack of bidirectional layers; `hidden` is per direction, so the width (what each
  layer emits and the backbone maps D -> D at) is 2 * hidden."""
  cell: CellKind = CellKind.LSTM
  hidden: int = 32
  num_layers: int = RecurrentConfig.num_layers  # the causal stacks' default depth
  # Fully unroll both scans (see RecurrentConfig.unroll).
  unroll: bool = False
  # Dropout rate between layers (see RecurrentConfig.dropout).
  dropout: float = 0.0

  @property
  def width(self) -> int:
    return 2 * self.hidden


class BiLayer(nn.Module):
  """One bidirectional layer: [B, T, D] -> [B, T, 2 * hidden], forward | backward states.

  The backward RNN scans the reversed sequence and flips its outputs back, so position t
  holds the forward state after x_0..x_t and the backward state after x_{T-1}..x_t. With
  `lengths` [B] (the real positions of end-padded examples) each example's backward scan
  starts at its own last real position (Flax's `seq_lengths`), so it never reads padding.
  """
  config: BiRecurrentConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, lengths=None):
    cfg = self.config
    unroll = x.shape[1] if cfg.unroll else 1
    cell = lambda: make_cell(cfg, self.dtype, self.param_dtype)
    forward = nn.RNN(cell(), unroll=unroll, name='forward')(x, seq_lengths=lengths)
    backward = nn.RNN(cell(), unroll=unroll, reverse=True, keep_order=True,
                      name='backward')(x, seq_lengths=lengths)
    return jnp.concatenate([forward, backward], axis=-1)  # [B, T, h] x 2 -> [B, T, 2h]


class BiRecurrent(nn.Module):
  """[B, T, D] -> [B, T, 2 * hidden]; bidirectional, so not causal. Parameters of layer i
  and direction ('forward' or 'backward') sit at params['layer_i'][direction]['cell'].
  `mask` [B, T] bool (True: real; padding only at the end) starts each example's backward
  scans at its last real position."""
  config: BiRecurrentConfig
  dtype: Any = jnp.float32  # computation (see archs/registry.py on precision)
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False, mask=None):
    lengths = None if mask is None else jnp.sum(mask, axis=1, dtype=jnp.int32)
    for i in range(self.config.num_layers):
      if i:
        x = _dropout(self.config, i)(x, deterministic=not train)
      x = BiLayer(self.config, self.dtype, self.param_dtype, name=f'layer_{i}')(x, lengths)
    return x


def birecurrent_flops(cfg: BiRecurrentConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [T, D] sequence: two directions per layer, each reading the
  previous layer's 2 * hidden concatenated states (reversal and concatenation are free)."""
  t, d = shape
  flops = 0.0
  d_in = d
  for _ in range(cfg.num_layers):
    flops += 2 * t * cell_step_flops(cfg.cell, d_in, cfg.hidden)
    d_in = cfg.width
  return flops


def _bi_config(cell: CellKind, width: int) -> BiRecurrentConfig:
  if width % 2:
    raise ValueError(f'a bidirectional width must be even (two halves); got {width}')
  return BiRecurrentConfig(cell=cell, hidden=width // 2)


for _cell, _description in [
    (CellKind.ELMAN, 'Elman RNN (tanh), stacked, lax.scan'),
    (CellKind.LSTM, 'LSTM (Hochreiter & Schmidhuber 1997), stacked, lax.scan'),
    (CellKind.GRU, 'GRU (Cho et al. 2014), stacked, lax.scan'),
]:
  registry.register(registry.ArchSpec(
      name=_cell.value, family='recurrence', description=_description,
      module=Recurrent,
      config_for_width=lambda w, c=_cell: RecurrentConfig(cell=c, hidden=w),
      input_kind='sequence', causal=True, flops=recurrent_flops, uses_scan=True,
      backward_factor=2.25, depth_fields=('num_layers',), decoding=registry.Decoding.STEP,
      search_space=registry.DROPOUT_SPACE))

for _cell, _description in [
    (CellKind.ELMAN, 'bidirectional Elman RNN (tanh), stacked, lax.scan'),
    (CellKind.LSTM, 'bidirectional LSTM (Graves & Schmidhuber 2005), stacked, lax.scan'),
    (CellKind.GRU, 'bidirectional GRU, stacked, lax.scan'),
]:
  registry.register(registry.ArchSpec(
      name=f'bi{_cell.value}', family='recurrence', description=_description,
      module=BiRecurrent,
      config_for_width=lambda w, c=_cell: _bi_config(c, w),
      input_kind='sequence', causal=False, flops=birecurrent_flops, width_step=2,
      uses_scan=True,
      backward_factor=2.25, depth_fields=('num_layers',), search_space=registry.DROPOUT_SPACE))
