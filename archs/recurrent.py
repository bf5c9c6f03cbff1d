"""Recurrent backbones: Elman RNN (tanh), LSTM and GRU, stacked, scanned with `nn.RNN`.

Every layer runs under `lax.scan` (via `nn.RNN`), never a Python loop over time. The pure
`step` function advances all layers by one token from the same parameters, for
token-by-token inference and for the scan-equals-step test.
"""
from __future__ import annotations

import dataclasses
import enum

import flax.linen as nn
import jax
import jax.numpy as jnp

from archs import registry


class Cell(str, enum.Enum):
  ELMAN = 'rnn'
  LSTM = 'lstm'
  GRU = 'gru'


# Gate count: how many [D -> h] and [h -> h] projections each cell computes per step.
_GATES = {Cell.ELMAN: 1, Cell.LSTM: 4, Cell.GRU: 3}


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
  cell: Cell = Cell.LSTM
  hidden: int = 64
  num_layers: int = 2
  # Fully unroll the scan: same maths, used to let XLA's cost_analysis count every step.
  unroll: bool = False

  @property
  def width(self) -> int:
    return self.hidden


def make_cell(cfg: RecurrentConfig) -> nn.RNNCellBase:
  if cfg.cell == Cell.ELMAN:
    return nn.SimpleCell(cfg.hidden)  # h' = tanh(W_i x + b + W_h h)
  if cfg.cell == Cell.LSTM:
    return nn.OptimizedLSTMCell(cfg.hidden)  # same maths as LSTMCell, fused gate matmuls
  return nn.GRUCell(cfg.hidden)


class Recurrent(nn.Module):
  """[B, T, D] -> [B, T, hidden]; causal by construction."""
  config: RecurrentConfig

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    cfg = self.config
    for i in range(cfg.num_layers):
      x = nn.RNN(make_cell(cfg), unroll=x.shape[1] if cfg.unroll else 1,
                 name=f'layer_{i}')(x)
    return x


def initial_carry(cfg: RecurrentConfig, batch: int, key=None):
  """Zero state for every layer (what `nn.RNN` starts from)."""
  key = jax.random.PRNGKey(0) if key is None else key
  cell = make_cell(cfg)
  return tuple(cell.initialize_carry(key, (batch, cfg.hidden)) for _ in range(cfg.num_layers))


def step(cfg: RecurrentConfig, params, carry, x_t):
  """One token through every layer: x_t [B, D] -> (new carry, y_t [B, hidden])."""
  cell = make_cell(cfg)
  new_carry = []
  for i, c in enumerate(carry):
    c, x_t = cell.apply({'params': params[f'layer_{i}']['cell']}, c, x_t)
    new_carry.append(c)
  return tuple(new_carry), x_t


def recurrent_flops(cfg: RecurrentConfig, shape: tuple[int, ...]) -> float:
  """Forward FLOPs for one [T, D] sequence: per step and layer, the gate projections from
  the input and from the state, their biases, and a few elementwise ops per gate."""
  t, d = shape
  h, g = cfg.hidden, _GATES[cfg.cell]
  flops = 0.0
  d_in = d
  for _ in range(cfg.num_layers):
    per_step = g * (2.0 * d_in * h + 2.0 * h * h + 2 * h)  # matmuls, bias, sum of the two
    per_step += {Cell.ELMAN: 0, Cell.LSTM: 3 * h, Cell.GRU: 5 * h}[cfg.cell]  # gate mixing
    flops += t * per_step
    d_in = h
  return flops


for _cell, _description in [
    (Cell.ELMAN, 'Elman RNN (tanh), stacked, lax.scan'),
    (Cell.LSTM, 'LSTM (Hochreiter & Schmidhuber 1997), stacked, lax.scan'),
    (Cell.GRU, 'GRU (Cho et al. 2014), stacked, lax.scan'),
]:
  registry.register(registry.ArchSpec(
      name=_cell.value, family='recurrence', description=_description,
      module=Recurrent,
      config_for_width=lambda w, c=_cell: RecurrentConfig(cell=c, hidden=w),
      input_kind='sequence', causal=True, flops=recurrent_flops, uses_scan=True))
