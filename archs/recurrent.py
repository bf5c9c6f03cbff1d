"""Recurrent backbones: Elman RNN (tanh), LSTM and GRU, stacked, scanned with `lax.scan`;
causal (`Recurrent`) or bidirectional (`BiRecurrent`).

Every layer runs under `lax.scan`, never a Python loop over time. The parameters are those
of Flax's cells (`nn.SimpleCell`, `nn.OptimizedLSTMCell`, `nn.GRUCell`: same names, shapes
and initialisers), but a layer computes the input projections of all T steps and all gates
as one `[B*T, D] x [D, G*H]` matmul before the scan, leaving only `h @ W_h` (one fused
`[H, G*H]` matmul) inside it: the scan's serial part shrinks to what truly depends on the
previous step. The pure `step` function advances all layers of a causal stack by one token
through Flax's own cells, from the same parameters, for token-by-token inference and as
the reference the scan is tested against. A bidirectional stack has no such step: each
output needs the whole sequence.
"""
from __future__ import annotations

import dataclasses
import enum

import flax.linen as nn
import jax
import jax.numpy as jnp

from archbench.archs import registry


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


def make_cell(cfg: RecurrentConfig | BiRecurrentConfig, name: str | None = None
              ) -> nn.RNNCellBase:
  """Flax's cell for the config: named (a submodule of the layer creating it), or unbound
  (parent=None, as `step` applies it to a layer's `cell` parameters)."""
  kwargs = {'name': name} if name else {'parent': None}
  if cfg.cell == Cell.ELMAN:
    return nn.SimpleCell(cfg.hidden, **kwargs)  # h' = tanh(W_i x + b + W_h h)
  if cfg.cell == Cell.LSTM:
    return nn.OptimizedLSTMCell(cfg.hidden, **kwargs)  # LSTMCell's maths and parameters
  return nn.GRUCell(cfg.hidden, **kwargs)


# The input-side and state-side parameter names of each cell's gates, in the order the
# fused matmuls concatenate them (Flax's names: 'ii' is the input kernel of gate i).
_GATE_NAMES = {Cell.ELMAN: ('',), Cell.LSTM: ('i', 'f', 'g', 'o'), Cell.GRU: ('r', 'z', 'n')}


def _fused(params, prefix: str, gates: tuple[str, ...], width: int):
  """Concatenate the per-gate kernels `prefix+gate` into one [in, G*H] kernel, and their
  biases into one [G*H] bias (zeros for gates without one)."""
  kernel = jnp.concatenate([params[prefix + g]['kernel'] for g in gates], axis=-1)
  biases = [params[prefix + g].get('bias', jnp.zeros((width,), kernel.dtype)) for g in gates]
  return kernel, jnp.concatenate(biases)


def _gate_update(cell: Cell, carry, x_proj, h_proj):
  """One step of the cell's maths from precomputed projections x_proj = x W_i + b_i and
  h_proj = h W_h + b_h ([B, G*H] each): (new carry, output). Flax's formulas exactly."""
  if cell == Cell.ELMAN:
    h = jnp.tanh(x_proj + h_proj)
    return h, h
  if cell == Cell.LSTM:
    c, _ = carry
    i, f, g, o = jnp.split(x_proj + h_proj, 4, axis=-1)
    c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
    h = nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h
  h = carry  # GRU: the reset gate scales the state's projection of the candidate only
  xr, xz, xn = jnp.split(x_proj, 3, axis=-1)
  hr, hz, hn = jnp.split(h_proj, 3, axis=-1)
  r, z = nn.sigmoid(xr + hr), nn.sigmoid(xz + hz)
  n = jnp.tanh(xn + r * hn)
  h = (1.0 - z) * n + z * h
  return h, h


class Layer(nn.Module):
  """One recurrent layer over a whole sequence: [B, T, D] -> [B, T, hidden], scanning
  forward, or backward (`reverse`, outputs kept in input order).

  Its parameters sit at `cell/...` exactly as `nn.RNN(make_cell(config))` would put them
  (created at init by Flax's cell itself), so `step` reads them unchanged.
  """
  config: RecurrentConfig | BiRecurrentConfig
  reverse: bool = False

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    b, t, _ = x.shape
    cell = make_cell(cfg, name='cell')
    carry = cell.initialize_carry(jax.random.PRNGKey(0), (b, cfg.hidden))
    if self.is_initializing():
      cell(carry, x[:, 0])  # Flax's cell creates its parameters, with its initialisers
    params = cell.variables['params']
    gates = _GATE_NAMES[cfg.cell]
    w_i, b_i = _fused(params, 'i', gates, cfg.hidden)
    w_h, b_h = _fused(params, 'h', gates, cfg.hidden)
    x_proj = jnp.einsum('btd,dg->tbg', x, w_i) + b_i  # every step's input side at once

    def body(carry, x_proj_t):
      return _gate_update(cfg.cell, carry, x_proj_t, carry_h(carry) @ w_h + b_h)

    _, ys = jax.lax.scan(body, carry, x_proj, reverse=self.reverse,
                         unroll=t if cfg.unroll else 1)
    return ys.transpose(1, 0, 2)  # [T, B, H] -> [B, T, H]


def carry_h(carry):
  """The hidden state h of a cell's carry ((c, h) for the LSTM)."""
  return carry[1] if isinstance(carry, tuple) else carry


class Recurrent(nn.Module):
  """[B, T, D] -> [B, T, hidden]; causal by construction."""
  config: RecurrentConfig

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    for i in range(self.config.num_layers):
      x = Layer(self.config, name=f'layer_{i}')(x)
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


def cell_step_flops(cell: Cell, d_in: int, h: int) -> float:
  """One step of one cell: the gate projections from the input and from the state, their
  biases, and a few elementwise ops per gate."""
  per_step = _GATES[cell] * (2.0 * d_in * h + 2.0 * h * h + 2 * h)  # matmuls, bias, sum
  return per_step + {Cell.ELMAN: 0, Cell.LSTM: 3 * h, Cell.GRU: 5 * h}[cell]  # gate mixing


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
  cell: Cell = Cell.LSTM
  hidden: int = 32
  num_layers: int = RecurrentConfig.num_layers  # the causal stacks' default depth
  # Fully unroll both scans (see RecurrentConfig.unroll).
  unroll: bool = False

  @property
  def width(self) -> int:
    return 2 * self.hidden


class BiLayer(nn.Module):
  """One bidirectional layer: [B, T, D] -> [B, T, 2 * hidden], forward | backward states.

  The backward RNN scans the reversed sequence and flips its outputs back, so position t
  holds the forward state after x_0..x_t and the backward state after x_{T-1}..x_t.
  """
  config: BiRecurrentConfig

  @nn.compact
  def __call__(self, x):
    forward = Layer(self.config, name='forward')(x)
    backward = Layer(self.config, reverse=True, name='backward')(x)
    return jnp.concatenate([forward, backward], axis=-1)  # [B, T, h] x 2 -> [B, T, 2h]


class BiRecurrent(nn.Module):
  """[B, T, D] -> [B, T, 2 * hidden]; bidirectional, so not causal. Parameters of layer i
  and direction ('forward' or 'backward') sit at params['layer_i'][direction]['cell']."""
  config: BiRecurrentConfig

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    for i in range(self.config.num_layers):
      x = BiLayer(self.config, name=f'layer_{i}')(x)
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


def _bi_config(cell: Cell, width: int) -> BiRecurrentConfig:
  if width % 2:
    raise ValueError(f'a bidirectional width must be even (two halves); got {width}')
  return BiRecurrentConfig(cell=cell, hidden=width // 2)


for _cell, _description in [
    (Cell.ELMAN, 'Elman RNN (tanh), stacked, lax.scan'),
    (Cell.LSTM, 'LSTM (Hochreiter & Schmidhuber 1997), stacked, lax.scan'),
    (Cell.GRU, 'GRU (Cho et al. 2014), stacked, lax.scan'),
]:
  registry.register(registry.ArchSpec(
      name=_cell.value, family='recurrence', description=_description,
      module=Recurrent,
      config_for_width=lambda w, c=_cell: RecurrentConfig(cell=c, hidden=w),
      input_kind='sequence', causal=True, flops=recurrent_flops, uses_scan=True,
      backward_factor=2.25, depth_fields=('num_layers',),
      decoding=registry.Decoding(
          init=lambda cfg, batch, max_length: initial_carry(cfg, batch), step=step)))

for _cell, _description in [
    (Cell.ELMAN, 'bidirectional Elman RNN (tanh), stacked, lax.scan'),
    (Cell.LSTM, 'bidirectional LSTM (Graves & Schmidhuber 2005), stacked, lax.scan'),
    (Cell.GRU, 'bidirectional GRU, stacked, lax.scan'),
]:
  registry.register(registry.ArchSpec(
      name=f'bi{_cell.value}', family='recurrence', description=_description,
      module=BiRecurrent,
      config_for_width=lambda w, c=_cell: _bi_config(c, w),
      input_kind='sequence', causal=False, flops=birecurrent_flops, width_step=2,
      uses_scan=True,
      backward_factor=2.25, depth_fields=('num_layers',)))
