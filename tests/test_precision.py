"""Mixed precision (bfloat16) through every backbone and the harness model: outputs against
float32 at init, a few training steps, float32 parameters, optimiser state and recurrent
carries, token-by-token decoding, plug-ins without a `dtype`, and the peaks MFU divides by.

Tolerance. bfloat16 keeps 8 significant bits, so each rounding has a relative error of at
most 2^-9 (0.2%). A tiny model's output has been through some 10-30 of them (the
embedding, two to four layers of matmuls and activations, the head) and their errors add
up like a random walk, to around 1% of the output's scale: measured, 0.3-1.2% RMS and at
most 1.5% of the largest output for every built-in. The bounds below allow about 3x that;
a bf16 path that lost precision where float32 is kept (softmax, normalisation statistics,
a recurrent carry, the LRU's recurrence) or a mask value that overflowed would break them.
"""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from archbench import archs, data
from archbench.archs import decoding, recurrent
from archbench.benchmarks.core import TrainConfig, UsageError
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.measure import timing
from selection import quick_subset  # tests/selection.py

BF16 = jnp.dtype(jnp.bfloat16)
RMS_TOLERANCE = 0.03  # ||y_bf16 - y_f32|| / ||y_f32|| (RMS over all outputs)
MAX_TOLERANCE = 0.05  # max |y_bf16 - y_f32| / max |y_f32|
B, T = 4, 6


def _task(arch):
  """A small task `arch` serves: the bundled digits for image backbones, translation for
  the encoder-decoder, and a short copy task (tokens, a per-token head) for the rest."""
  return _task_of_kind(arch.input_kind)


@functools.cache
def _task_of_kind(input_kind):
  """Built once per input kind, shared by the architectures of that kind."""
  if input_kind == 'image':
    return data.build('digits')
  if input_kind == 'encdec':
    return data.build('translate')
  return data.build('copy', length=2, eval_size=8)


def _compile(fn, *args):
  return timing.compile_ahead(fn, *args, fast=True)[0]


@functools.cache
def _case(name):
  """(task, config, float32 model, bfloat16 model, initial train state, a batch), the
  state initialised through the bfloat16 model: its parameters are float32 all the same."""
  arch = archs.get(name)
  task = _task(arch)
  config = model_lib.resolve_config(arch, 'tiny', task.spec)
  f32 = model_lib.build_model(arch, config, task.spec)
  bf16 = model_lib.build_model(arch, config, task.spec, dtype='bfloat16')
  optimizer = train_lib.make_optimizer(TrainConfig(steps=3, batch_size=B, warmup_steps=1))
  state = train_lib.init_state(bf16, task, optimizer, jax.random.PRNGKey(0), B)
  batch = task.train_batch(jax.random.PRNGKey(1), B)
  return task, config, f32, bf16, optimizer, state, batch


def _dtypes(tree) -> set:
  return {jnp.dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(tree)
          if jnp.issubdtype(leaf.dtype, jnp.floating)}


def _declares_dtype(name):
  """Plug-ins loaded with `pytest --plugin` may not declare a dtype; test_plugin_without_
  dtype covers what they get instead."""
  if not archs.get(name).declares_dtype:
    pytest.skip(f'{name} declares no dtype: it runs in float32 only')


@pytest.mark.parametrize('name', quick_subset(archs.names()))
def test_bf16_matches_float32_at_init(name):
  _declares_dtype(name)
  task, _, f32, bf16, _, state, batch = _case(name)
  args = train_lib.model_args(task.spec, batch)
  both = lambda params, *args: (f32.apply(params, *args, train=False),
                                bf16.apply(params, *args, train=False))
  y32, y16 = map(np.asarray, _compile(both, state.params, *args)(state.params, *args))
  assert y16.dtype == np.float32  # the head's outputs are cast for the loss
  err = np.abs(y16.astype(np.float64) - y32)
  rms = np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(np.square(y32, dtype=np.float64)))
  assert rms <= RMS_TOLERANCE, f'{name}: relative RMS error {rms:.4f}'
  assert err.max() <= MAX_TOLERANCE * np.abs(y32).max(), f'{name}: max error {err.max():.4g}'
  assert err.max() > 0, f'{name}: bitwise equal, so bf16 was not used'


@pytest.mark.parametrize('name', quick_subset(archs.names()))
def test_bf16_trains_with_float32_state(name):
  _declares_dtype(name)
  task, _, _, bf16, optimizer, state, _ = _case(name)
  chunk = functools.partial(train_lib.train_chunk, model=bf16, task=task, optimizer=optimizer,
                            batch_size=B, num_steps=3)
  key = jax.random.PRNGKey(2)
  new_state, loss = _compile(chunk, state, key)(state, key)
  assert loss.dtype == jnp.float32 and np.isfinite(float(loss)), (name, loss)
  assert _dtypes(new_state.params) == {jnp.dtype(jnp.float32)}
  assert _dtypes(new_state.opt_state) <= {jnp.dtype(jnp.float32)}  # Adam's moments
  moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                 state.params, new_state.params)  # numpy: no op compiled
  assert any(jax.tree_util.tree_leaves(moved)), f'{name}: no parameter changed'
  assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree_util.tree_leaves(new_state))


def _backbone_inputs(arch, config):
  """Backbone inputs as shape structs, float32 (the backbone casts them itself)."""
  if arch.input_kind == 'image':
    return (jax.ShapeDtypeStruct((B, 8, 8, 1), jnp.float32),)
  sequence = jax.ShapeDtypeStruct((B, T, config.width), jnp.float32)
  return (sequence, sequence) if arch.input_kind == 'encdec' else (sequence,)


@pytest.mark.parametrize('name', quick_subset(archs.names()))
def test_backbone_computes_in_bf16_with_float32_parameters(name):
  """Shapes and dtypes only (traced, not compiled): a backbone that ignored its dtype would
  return float32, one that made bf16 parameters would fail the second check."""
  _declares_dtype(name)
  arch = archs.get(name)
  config = arch.config('tiny')
  module = arch.build(config, dtype=jnp.bfloat16)
  inputs = _backbone_inputs(arch, config)
  params = jax.eval_shape(functools.partial(module.init, train=False),
                          jax.random.PRNGKey(0), *inputs)
  assert _dtypes(params) == {jnp.dtype(jnp.float32)}, name
  out = jax.eval_shape(functools.partial(module.apply, train=False), params, *inputs)
  assert out.dtype == BF16, (name, out.dtype)
  # In float32, as before: the default.
  out = jax.eval_shape(functools.partial(arch.build(config).apply, train=False), params, *inputs)
  assert out.dtype == jnp.float32, name


# ---------------------------------------------------------------------------------------
# Recurrent carries stay float32.

@pytest.mark.parametrize('cell', list(recurrent.CellKind))
def test_recurrent_carry_is_float32_in_bf16(cell):
  """A scan step of each cell in bf16 takes and returns a float32 carry and emits bf16
  (a bf16 Elman cell of Flax's would return a bf16 carry; LSTM and GRU float32 outputs)."""
  cfg = recurrent.RecurrentConfig(cell=cell, hidden=8, num_layers=1)
  rnn = nn.RNN(recurrent.make_cell(cfg, jnp.bfloat16), return_carry=True)
  x = jax.ShapeDtypeStruct((B, T, 5), jnp.float32)
  params = jax.eval_shape(rnn.init, jax.random.PRNGKey(0), x)
  carry, y = jax.eval_shape(rnn.apply, params, x)
  assert _dtypes(carry) == {jnp.dtype(jnp.float32)}, cell
  assert y.dtype == BF16, cell


def test_float32_carry_keeps_what_a_bf16_carry_loses():
  """Why the carry is float32: an LSTM whose forget gate is 1 adds 1e-4 to its cell state
  per step. Over 1024 steps a float32 carry reaches 0.1024 (its increments computed in bf16,
  good to 0.4%); a bf16 carry stops growing at 2^-5 = 0.03125, where one step is under half
  a bf16 unit in the last place (2^-12) and rounds away."""
  cfg = recurrent.RecurrentConfig(cell=recurrent.CellKind.LSTM, hidden=4, num_layers=1)
  length = 1024
  x = jnp.zeros((1, length, 3))
  shapes = jax.eval_shape(nn.RNN(recurrent.make_cell(cfg)).init, jax.random.PRNGKey(0), x)
  params = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  cell = params['params']['cell']
  cell['hf']['bias'] = jnp.full(4, 10.0)  # f = sigmoid(10) = 1 in bf16
  cell['hg']['bias'] = jnp.full(4, 2e-4)  # g = tanh(2e-4); i = sigmoid(0) = 1/2

  def final_c(cell_module, carry_dtype):
    rnn = nn.RNN(cell_module, return_carry=True)
    zeros = jnp.zeros((1, 4), carry_dtype)
    (c, _), _ = jax.jit(rnn.apply)(params, x, initial_carry=(zeros, zeros))
    return float(c[0, 0])

  ours = final_c(recurrent.make_cell(cfg, jnp.bfloat16), jnp.float32)
  bf16_carry = final_c(nn.OptimizedLSTMCell(4, dtype=jnp.bfloat16, parent=None), jnp.bfloat16)
  expected = length * 0.5 * np.tanh(2e-4)
  assert ours == pytest.approx(expected, rel=0.01)
  assert bf16_carry == 0.03125  # stuck, 70% short


# ---------------------------------------------------------------------------------------
# Token-by-token decoding in bf16.

@pytest.mark.parametrize('name', quick_subset([n for n in archs.names()
                                                if archs.get(n).decoding]))
def test_bf16_decoding_matches_the_whole_sequence(name):
  """The backbone built in bf16 decodes in bf16: from bf16 inputs it emits bf16, keeps its
  cache (carries, key/value buffers) float32, and agrees with the bf16 whole-sequence call
  within the tolerance above."""
  _declares_dtype(name)
  arch = archs.get(name)
  _, config, _, _, _, state, _ = _case(name)
  params = {'params': state.params['params']['backbone']}  # initialised above, reused
  if arch.causal is None:  # the same parameters, built causal
    config = dataclasses.replace(config, causal=True)
  module = arch.build(config, dtype=jnp.bfloat16)
  stepwise = decoding.Stepwise(module, arch.decoding_for(config))
  x = jax.random.normal(jax.random.PRNGKey(3), (B, T, config.width)).astype(jnp.bfloat16)

  def both(params, x):  # the whole sequence, and the step scanned over it from a new cache
    variables = {'params': {'backbone': params['params']}}  # where Stepwise holds it
    step = lambda c, x_t: decoding.step(stepwise, variables, c, x_t[:, None])
    # In the same compiled call (one compilation, not two): init_cache's initialisers are
    # dead code under jit, only the cache's initial state is kept.
    cache, stepped = jax.lax.scan(step, decoding.init_cache(stepwise, x),
                                  jnp.swapaxes(x, 0, 1))
    return module.apply(params, x), cache, stepped[:, :, 0]
  whole, cache, stepped = _compile(both, params, x)(params, x)
  whole = np.asarray(whole, np.float64)
  assert stepped.dtype == BF16, name
  assert _dtypes(cache) <= {jnp.dtype(jnp.float32)}, name
  err = np.abs(np.swapaxes(np.asarray(stepped, np.float64), 0, 1) - whole)
  scale = np.abs(whole).max()
  assert np.sqrt(np.mean(err**2)) <= RMS_TOLERANCE * np.sqrt(np.mean(whole**2)), name
  assert err.max() <= MAX_TOLERANCE * scale, name


# ---------------------------------------------------------------------------------------
# Plug-ins without a dtype.

@dataclasses.dataclass(frozen=True)
class _Config:
  width: int = 8


class _LinenNoDtype(nn.Module):
  config: _Config

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    return nn.Dense(self.config.width)(x)


class _NNXNoDtype(nnx.Module):
  def __init__(self, config: _Config, *, rngs: nnx.Rngs):
    self.dense = nnx.Linear(config.width, config.width, rngs=rngs)

  def __call__(self, x, *, train: bool = False):
    return self.dense(x)


class _NNXWithDtype(_NNXNoDtype):
  def __init__(self, config: _Config, *, dtype=jnp.float32, rngs: nnx.Rngs):
    self.dense = nnx.Linear(config.width, config.width, dtype=dtype, rngs=rngs)


def _plugin(module):
  return archs.ArchSpec(name=f'plugin_{module.__name__}', family='attention',
                        description='test plug-in', module=module,
                        config_for_width=lambda w: _Config(w), input_kind='sequence',
                        causal=True, flops=lambda cfg, shape: 0.0)


@pytest.mark.parametrize('module', [_LinenNoDtype, _NNXNoDtype])
def test_plugin_without_dtype(module):
  """In bfloat16 a plug-in that declares no dtype is a usage error naming it and what it
  lacks (it would otherwise compute in float32 under a bfloat16 label); in float32 it runs
  as before."""
  arch = _plugin(module)
  spec = data.build('copy', length=2, eval_size=8).spec
  with pytest.raises(UsageError, match=rf'{arch.name}.*must declare a `dtype` attribute'):
    model_lib.build_model(arch, _Config(), spec, dtype='bfloat16')
  model = model_lib.build_model(arch, _Config(), spec)
  tokens = jax.ShapeDtypeStruct((2, spec.length), jnp.int32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), tokens)
  assert jax.eval_shape(model.apply, params, tokens).dtype == jnp.float32


def test_nnx_plugin_with_dtype_computes_in_bf16():
  arch = _plugin(_NNXWithDtype)
  assert arch.declares_dtype and not _plugin(_NNXNoDtype).declares_dtype
  module = arch.build(_Config(), dtype=jnp.bfloat16)
  x = jax.ShapeDtypeStruct((2, T, 8), jnp.float32)
  params = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  assert _dtypes(params) == {jnp.dtype(jnp.float32)}
  assert jax.eval_shape(module.apply, params, x).dtype == BF16


def test_precision_names():
  assert model_lib.precision_dtype('bfloat16') == BF16
  assert model_lib.precision_dtype('float32') == jnp.float32
  with pytest.raises(UsageError, match='float16'):
    model_lib.precision_dtype('float16')


# ---------------------------------------------------------------------------------------
# Peaks for MFU.

def test_every_accelerator_has_a_peak_per_precision():
  for kind, peaks in timing.ACCELERATOR_PEAK_FLOPS.items():
    assert set(peaks) == {'float32', 'bfloat16'}, kind
    if peaks['bfloat16'] is not None:
      assert peaks['bfloat16'] >= peaks['float32'], kind
  assert timing.ACCELERATOR_PEAK_FLOPS['H100']['bfloat16'] == 989.5e12
  assert timing.ACCELERATOR_PEAK_FLOPS['V100']['bfloat16'] is None  # no bf16 units


@pytest.fixture
def fresh_peaks():
  timing.device_peak_flops.cache_clear()
  yield
  timing.device_peak_flops.cache_clear()


def test_accelerator_peak_follows_the_precision(monkeypatch, fresh_peaks):
  gpu = lambda kind: [type('Device', (), {'platform': 'gpu', 'device_kind': kind})()]
  monkeypatch.setattr(jax, 'devices', lambda *a: gpu('NVIDIA H100 80GB HBM3'))
  assert timing.device_peak_flops('bfloat16') == (989.5e12, 'table:H100:bfloat16')
  assert timing.device_peak_flops() == (494.5e12, 'table:H100:float32')
  timing.device_peak_flops.cache_clear()
  monkeypatch.setattr(jax, 'devices', lambda *a: gpu('Tesla V100-SXM2-16GB'))
  peak, source = timing.device_peak_flops('bfloat16')
  assert peak is None and source.startswith('table:V100:bfloat16')
  with pytest.raises(ValueError, match='float16'):
    timing.device_peak_flops('float16')


def test_cpu_peak_is_measured_per_precision(monkeypatch, tmp_path, fresh_peaks):
  """A CPU's bf16 matmul is measured on its own, cached under its own key."""
  measured = []

  def measure(dtype):
    measured.append(jnp.dtype(dtype).name)
    return {'float32': 1e11, 'bfloat16': 3e11}[jnp.dtype(dtype).name]
  monkeypatch.setattr(timing.files, 'cache_dir', lambda: tmp_path)
  monkeypatch.setattr(timing, 'measure_matmul_flops', measure)
  assert timing.device_peak_flops('bfloat16') == (3e11, 'measured:matmul2048:bfloat16')
  assert timing.device_peak_flops('float32') == (1e11, 'measured:matmul2048:float32')
  timing.device_peak_flops.cache_clear()
  timing.device_peak_flops('bfloat16')  # from the disk cache now
  assert measured == ['bfloat16', 'float32']
