"""archbench's backbones against PyTorch eager models of the same shapes, on the same CPU.

A table of architectures is only as honest as its implementations: if archbench's CNN were
several times slower than the one a user writes in PyTorch, a speed table would measure
archbench's code, not convolutions. This benchmark trains each backbone from archbench's
registry and a PyTorch model with the same layers, parameter count and maths, on the same
fixed batch with AdamW and an MSE loss against a fixed target, in alternating rounds in one
process, and prints archbench / PyTorch per shape (the median of the per-round ratios).

It also measures the harness's overhead: a cell's `step_ms` (runner.measure_cell, batches
drawn on device inside the compiled chunk) against the bare jitted step of the same model
on one fixed batch.

    pip install -e '.[torch]'
    python tools/perf_vs_torch.py [--rounds 3] [--steps 20] [--out DIR]

It prints figures and writes records; it asserts nothing about speed. Without torch it
measures archbench alone and says so.
"""
from __future__ import annotations

import dataclasses
import functools
import statistics
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from archbench import archs
from archbench.archs import cnn, recurrent, transformer
from archbench.benchmarks.measure import timing

LR = 1e-3
WEIGHT_DECAY = 0.01


@dataclasses.dataclass(frozen=True)
class Shape:
  """One comparison: an archbench backbone config and the PyTorch model of the same maths.

  `torch_model(torch)` builds the PyTorch module (torch is passed in, so this module
  imports without it); `inputs` is the input's shape, `outputs` the backbone output's.
  """
  name: str
  arch: str
  config: Any
  inputs: tuple[int, ...]
  outputs: tuple[int, ...]
  torch_model: Callable[[Any], Any]


def _torch_recurrent(kind: str, d_in: int, hidden: int, layers: int):
  def build(torch):
    cls = {'rnn': torch.nn.RNN, 'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU}[kind]
    rnn = cls(d_in, hidden, num_layers=layers, batch_first=True)

    class Model(torch.nn.Module):
      def __init__(self):
        super().__init__()
        self.rnn = rnn

      def forward(self, x):
        return self.rnn(x)[0]
    return Model()
  return build


def _torch_transformer(d: int, heads: int, mlp: int, layers: int, length: int):
  def build(torch):
    gelu = functools.partial(torch.nn.functional.gelu, approximate='tanh')  # as flax's

    class Model(torch.nn.Module):
      def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(
            d, heads, mlp, dropout=0.0, activation=gelu, batch_first=True, norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(d)
        self.register_buffer('positions', torch.from_numpy(  # archbench's sinusoidal table
            transformer.sinusoidal_positions(length, d)))

      def forward(self, x):
        return self.norm(self.encoder(x + self.positions))
    return Model()
  return build


def _torch_cnn(channels: int, stages: int, c_in: int):
  def build(torch):
    nn = torch.nn
    layers, c = [], c_in
    for i in range(stages):
      out = channels * 2**i
      layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(),
                 nn.Conv2d(out, out, 3, padding=1), nn.ReLU(),
                 nn.MaxPool2d(2, 2, ceil_mode=True)]  # ceil: flax's 'SAME' pooling
      c = out

    class Model(nn.Module):
      def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Linear(c, 4 * channels)

      def forward(self, x):  # x: [B, H, W, C] as archbench's; PyTorch convolves NCHW
        y = self.convs(x.permute(0, 3, 1, 2)).mean(dim=(2, 3))
        return torch.relu(self.dense(y))
    return Model()
  return build


def shapes() -> list[Shape]:
  """The issue's five shapes: 2-layer Elman/LSTM/GRU at hidden 128 on B32 T256 D2; a
  2-block pre-LN transformer at d128, 4 heads, MLP 512 on B32 T256; archbench's `cnn` at
  channels 32 on B128 28x28x1."""
  out = []
  for kind in ('rnn', 'lstm', 'gru'):
    config = recurrent.RecurrentConfig(cell=recurrent.CellKind(kind), hidden=128, num_layers=2)
    out.append(Shape(f'{kind} 2x128 B32 T256', kind, config, (32, 256, 2), (32, 256, 128),
                     _torch_recurrent(kind, 2, 128, 2)))
  config = transformer.TransformerConfig(d_model=128, num_layers=2, num_heads=4, mlp_ratio=4)
  out.append(Shape('transformer 2x d128 B32 T256', 'transformer', config, (32, 256, 128),
                   (32, 256, 128), _torch_transformer(128, 4, 512, 2, 256)))
  out.append(Shape('cnn c32 B128 28x28x1', 'cnn', cnn.CNNConfig(channels=32),
                   (128, 28, 28, 1), (128, 128), _torch_cnn(32, 2, 1)))
  return out


def median_step_s(step: Callable[[], Any], steps: int, warmup: int = 3) -> float:
  """Median wall time of one call of `step` (which must finish its work before returning),
  by the harness's timer: `warmup` untimed calls, then `steps` timed ones."""
  chrono = timing.Chrono(warmup_windows=warmup)
  for _ in range(warmup + steps):
    chrono.time(step)
  return chrono.median_s


def archbench_step(shape: Shape, seed: int = 0):
  """(step, param_count): one AdamW step of the registry's backbone on a fixed batch,
  jitted with the parameters and optimiser state donated (updated in place)."""
  module = archs.get(shape.arch).build(shape.config)
  key_x, key_y, key_init = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.normal(key_x, shape.inputs)
  target = jax.random.normal(key_y, shape.outputs)
  params = module.init(key_init, x)
  optimizer = optax.adamw(LR, weight_decay=WEIGHT_DECAY)
  state = [params, optimizer.init(params)]

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def train_step(params, opt_state, x, target):
    def loss_fn(params):
      return jnp.mean((module.apply(params, x) - target) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  def step():
    state[0], state[1], loss = train_step(state[0], state[1], x, target)
    jax.block_until_ready(loss)

  count = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(params))
  return step, count


def torch_step(shape: Shape, torch, seed: int = 0):
  """(step, param_count): the same step in PyTorch eager."""
  torch.manual_seed(seed)
  model = shape.torch_model(torch)
  x, target = torch.randn(*shape.inputs), torch.randn(*shape.outputs)
  optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = torch.mean((model(x) - target) ** 2)
    loss.backward()
    optimizer.step()

  return step, sum(p.numel() for p in model.parameters())


def compare(rounds: int, steps: int, torch=None, only: list[str] | None = None) -> list[dict]:
  """Per shape: archbench and PyTorch median step times per round, alternating."""
  rows = []
  for shape in shapes():
    if only and shape.arch not in only:
      continue
    ours, our_params = archbench_step(shape)
    theirs, their_params = torch_step(shape, torch) if torch else (None, None)
    ours_ms, theirs_ms = [], []
    for _ in range(rounds):
      ours_ms.append(1e3 * median_step_s(ours, steps))
      if theirs:
        theirs_ms.append(1e3 * median_step_s(theirs, steps))
    ratios = [a / b for a, b in zip(ours_ms, theirs_ms)]
    row = {'shape': shape.name, 'arch': shape.arch, 'archbench_params': our_params,
           'torch_params': their_params, 'archbench_ms': statistics.median(ours_ms),
           'torch_ms': statistics.median(theirs_ms) if theirs_ms else None,
           'ratio': statistics.median(ratios) if ratios else None,
           'rounds': {'archbench_ms': ours_ms, 'torch_ms': theirs_ms}}
    rows.append(row)
    print(_row_line(row), flush=True)
  return rows


def _row_line(row: dict) -> str:
  theirs = f"{row['torch_ms']:8.1f}" if row['torch_ms'] else '       -'
  ratio = f"{row['ratio']:6.2f}" if row['ratio'] else '     -'
  return f"{row['shape']:32s} {row['archbench_ms']:8.1f} {theirs} {ratio}"


# Harness overhead: (arch, task, task params) cells at the `small` budget.
OVERHEAD_CELLS = [('lstm', 'adding', {'length': 256}), ('transformer', 'adding', {'length': 256}),
                  ('cnn', 'digits', {})]


def _stepper(step_fn, state, batch):
  """A no-argument call of step_fn(state, batch) -> (state, loss), keeping the state."""
  holder = [state]

  def step():
    holder[0], loss = step_fn(holder[0], batch)
    jax.block_until_ready(loss)
  return step


def harness_overhead(steps: int) -> list[dict]:
  """A cell's step_ms (the runner: chunks of steps with batches drawn on device) against
  the bare jitted train step of the same model on one fixed batch."""
  from archbench.benchmarks import core
  from archbench.benchmarks.harness import runner, train as train_lib
  from archbench.data.spec import Stream, stream_key
  rows = []
  for arch, task, params in OVERHEAD_CELLS:
    train = core.TrainConfig(steps=steps, steps_per_dispatch=max(1, steps // 10))
    cell = core.Cell(arch=arch, task=task, size='small', seed=0, task_params=params,
                     train=train)
    out: dict[str, Any] = {}
    runner.measure_cell(cell, out)
    _, _, built_task, model = runner.prepare(cell)
    optimizer = train_lib.make_optimizer(train)
    state = train_lib.init_state(model, built_task, optimizer,
                                 stream_key(0, Stream.INIT), train.batch_size)
    batch = built_task.train_batch(jax.random.PRNGKey(1), train.batch_size)
    bare = jax.jit(functools.partial(train_lib.train_step, model=model, spec=built_task.spec,
                                     optimizer=optimizer), donate_argnums=0)
    bare = functools.partial(bare, dropout_key=stream_key(0, Stream.DROPOUT))
    bare_ms = 1e3 * median_step_s(_stepper(bare, state, batch), 20)
    cell_ms = out['perf']['step_ms']
    rows.append({'cell': f'{arch}/{task}', 'cell_step_ms': cell_ms, 'bare_step_ms': bare_ms,
                 'overhead': cell_ms / bare_ms - 1})
    print(f'{arch}/{task:10s} cell {cell_ms:8.2f} ms   bare {bare_ms:8.2f} ms   '
          f'overhead {100 * (cell_ms / bare_ms - 1):+.1f}%', flush=True)
  return rows


def markdown(rows: list[dict], overhead: list[dict], env: dict) -> str:
  lines = [f"Training step, median ms (machine: {env['cpu']}, {env.get('cpu_count')} cores; "
           f"jax {env['packages'].get('jax')}, torch {env.get('torch')}).", '',
           '| shape | archbench ms | PyTorch ms | archbench / PyTorch |', '|---|---|---|---|']
  for r in rows:
    theirs = f"{r['torch_ms']:.1f}" if r['torch_ms'] else '-'
    ratio = f"{r['ratio']:.2f}" if r['ratio'] else '-'
    lines.append(f"| {r['shape']} | {r['archbench_ms']:.1f} | {theirs} | {ratio} |")
  if overhead:
    lines += ['', '| cell (small) | cell step_ms | bare jitted step ms | overhead |',
              '|---|---|---|---|']
    lines += [f"| {r['cell']} | {r['cell_step_ms']:.2f} | {r['bare_step_ms']:.2f} | "
              f"{100 * r['overhead']:+.1f}% |" for r in overhead]
  return '\n'.join(lines) + '\n'
