"""TCN: causality, the exact receptive field, residual blocks against explicit numpy sums,
the 1x1 residual path where widths change, the analytic FLOP count against XLA's, and the
depth a cell gets so that its receptive field covers the task's input."""
import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs, data
from archbench.archs import registry, tcn
from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import runner
from archbench.benchmarks.results import compare
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report
from archbench.benchmarks.results import tables
from archbench.common import files

B = 2


def _rng(seed):
  return np.random.default_rng(seed)


def _random_params(module, x, seed, scale=0.3):
  """Fresh random values for every leaf of the module's parameter tree (biases included,
  so a reference that forgot one would disagree)."""
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  rng = _rng(seed)
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), jnp.float32), shapes)


# ---------------------------------------------------------------------------------------
# Naive reference: dilated causal convolution as explicit sums, float64.

def _np_causal_conv(x, kernel, bias, dilation):
  """x [B, T, C_in], kernel [k, C_in, C_out] -> [B, T, C_out]. Tap j of output t reads
  x[t - (k-1-j) * dilation]; taps before the start read zeros."""
  b, t, _ = x.shape
  k, _, c_out = kernel.shape
  y = np.zeros((b, t, c_out)) + bias
  for s in range(t):
    for j in range(k):
      src = s - (k - 1 - j) * dilation
      if src >= 0:
        y[:, s] += x[:, src] @ kernel[j]
  return y


def _np_block(p, x, dilation):
  p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), p)
  relu = lambda z: np.maximum(z, 0.0)
  y = relu(_np_causal_conv(x, p['conv1']['kernel'], p['conv1']['bias'], dilation))
  y = relu(_np_causal_conv(y, p['conv2']['kernel'], p['conv2']['bias'], dilation))
  if 'residual' in p:  # 1x1 convolution: a per-position matmul
    x = x @ p['residual']['kernel'][0] + p['residual']['bias']
  return relu(y + x)


def _np_tcn(params, x, cfg):
  for i in range(len(cfg.widths())):
    x = _np_block(params[f'block_{i}'], x, 2**i)
  return x


@pytest.mark.parametrize('dilation,c_in,c_out', [(1, 6, 6), (4, 6, 6), (2, 5, 7)])
def test_block_matches_numpy(dilation, c_in, c_out):
  t, k = 11, 3
  module = tcn.TemporalBlock(c_out, k, dilation)
  x = _rng(dilation).standard_normal((B, t, c_in)).astype(np.float32)
  params = _random_params(module, jnp.asarray(x), seed=10 + dilation)
  assert ('residual' in params['params']) == (c_in != c_out)
  y = np.asarray(module.apply(params, jnp.asarray(x)))
  ref = _np_block(params['params'], x.astype(np.float64), dilation)
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_single_block_tcn_matches_numpy():
  cfg = tcn.TCNConfig(channels=8, num_blocks=1, kernel_size=4)
  module = tcn.TCN(cfg)
  x = _rng(20).standard_normal((B, 9, 8)).astype(np.float32)
  params = _random_params(module, jnp.asarray(x), seed=21)
  y = np.asarray(module.apply(params, jnp.asarray(x)))
  np.testing.assert_allclose(y, _np_tcn(params['params'], x.astype(np.float64), cfg),
                             rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Causality and the receptive field.

def test_tcn_is_causal():
  cfg = archs.get('tcn').config('tiny')
  module = tcn.TCN(cfg)
  length = 12
  rng = _rng(30)
  x = rng.standard_normal((B, length, cfg.width)).astype(np.float32)
  params = _random_params(module, jnp.asarray(x), seed=31, scale=0.2)
  apply = jax.jit(module.apply)
  y = np.asarray(apply(params, jnp.asarray(x)))
  for t in (0, 5, length - 2):
    x2 = x.copy()
    x2[:, t + 1:] = rng.standard_normal(x2[:, t + 1:].shape)
    y2 = np.asarray(apply(params, jnp.asarray(x2)))
    np.testing.assert_array_equal(y2[:, :t + 1], y[:, :t + 1])
    assert np.max(np.abs(y2[:, t + 1:] - y[:, t + 1:])) > 1e-4


def test_receptive_field_formula():
  assert tcn.receptive_field(tcn.TCNConfig(num_blocks=2, kernel_size=3)) == 13
  assert tcn.receptive_field(tcn.TCNConfig()) == 253  # the default: 6 blocks, k = 3
  assert tcn.receptive_field(tcn.TCNConfig(num_blocks=1, kernel_size=1)) == 1
  # The registry knows it (`archbench list` and the harness read it there).
  spec = archs.get('tcn')
  cfg = tcn.TCNConfig(num_blocks=3, kernel_size=5)
  assert spec.receptive_field(cfg) == 1 + 2 * 4 * 7


@pytest.mark.parametrize('num_blocks,kernel_size', [(2, 3), (3, 2)])
def test_gradient_support_is_the_receptive_field(num_blocks, kernel_size):
  """d y[t] / d x[s] is non-zero exactly for t - RF < s <= t."""
  cfg = tcn.TCNConfig(channels=12, num_blocks=num_blocks, kernel_size=kernel_size)
  rf = tcn.receptive_field(cfg)
  length = rf + 10
  module = tcn.TCN(cfg)
  rng = _rng(40 + num_blocks)
  x = jnp.asarray(rng.standard_normal((B, length, cfg.width)), jnp.float32)
  params = _random_params(module, x, seed=41)
  probe = jnp.asarray(rng.standard_normal(cfg.width), jnp.float32)  # mixes the channels

  def output_at(x, t):
    return jnp.sum(module.apply(params, x)[:, t] @ probe)

  grad = jax.jit(jax.grad(output_at), static_argnums=1)
  for t in (length - 1, rf + 3, rf - 1, 4):
    g = np.abs(np.asarray(grad(x, t))).sum(axis=(0, 2))  # [T]: summed over batch, channels
    inside = np.arange(length)
    inside = (inside > t - rf) & (inside <= t)
    assert np.all(g[~inside] == 0), (t, np.nonzero(g[~inside]))
    assert np.all(g[inside] > 0), (t, np.nonzero(g[inside] == 0))


# ---------------------------------------------------------------------------------------
# Blocks of differing widths: the 1x1 residual convolution.

def test_width_changes_use_a_residual_projection():
  cfg = tcn.TCNConfig(channels=6, num_blocks=4, kernel_size=2, block_channels=(10, 10, 4, 6))
  module = tcn.TCN(cfg)
  x = _rng(50).standard_normal((B, 9, cfg.width)).astype(np.float32)
  params = _random_params(module, jnp.asarray(x), seed=51)
  p = params['params']
  widths_in = (6, 10, 10, 4)
  for i, (c_in, c_out) in enumerate(zip(widths_in, cfg.widths())):
    block = p[f'block_{i}']
    assert block['conv1']['kernel'].shape == (2, c_in, c_out)
    assert block['conv2']['kernel'].shape == (2, c_out, c_out)
    if c_in == c_out:
      assert 'residual' not in block
    else:
      assert block['residual']['kernel'].shape == (1, c_in, c_out)
  y = np.asarray(module.apply(params, jnp.asarray(x)))
  assert y.shape == (B, 9, cfg.width)
  np.testing.assert_allclose(y, _np_tcn(p, x.astype(np.float64), cfg), rtol=1e-5, atol=1e-5)


def test_config_rejects_inconsistent_widths():
  with pytest.raises(ValueError, match='entries'):
    tcn.TCNConfig(channels=6, num_blocks=3, block_channels=(6, 6))
  with pytest.raises(ValueError, match='last block'):
    tcn.TCNConfig(channels=6, num_blocks=2, block_channels=(6, 8))
  # Lists (as suite overrides give them) become tuples, so the config stays hashable.
  cfg = tcn.TCNConfig(channels=6, num_blocks=2, block_channels=[8, 6])
  assert cfg.widths() == (8, 6) and hash(cfg)


def test_weight_norm_is_a_reparametrisation():
  """With weight_norm, each kernel is scale * v / ||v|| (norm over taps and inputs, per
  output channel); feeding that kernel to the plain block gives the same output."""
  t, k, c_in, c_out, dilation = 8, 3, 5, 7, 2
  wn = tcn.TemporalBlock(c_out, k, dilation, weight_norm=True)
  x = jnp.asarray(_rng(60).standard_normal((B, t, c_in)), jnp.float32)
  params = _random_params(wn, x, seed=61)
  p = params['params']
  plain = {'residual': p['residual']}
  for name in ('conv1', 'conv2'):
    v = np.asarray(p[name]['kernel'], np.float64)
    scale = np.asarray(p[f'{name}_wn'][f'{name}/kernel/scale'], np.float64)
    kernel = scale * v / np.sqrt((v**2).sum(axis=(0, 1), keepdims=True))
    plain[name] = {'kernel': kernel, 'bias': p[name]['bias']}
  y = np.asarray(wn.apply(params, x))
  ref = _np_block(plain, np.asarray(x, np.float64), dilation)
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# FLOPs: analytic against XLA (a TCN has no scan, so XLA sees everything).

def _xla_flops(module, params, x):
  cost = jax.jit(lambda p, x: module.apply(p, x)).lower(params, x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


@pytest.mark.parametrize('cfg', [
    archs.get('tcn').config('tiny'),
    # Widths where matmuls dominate, as in any real model: at 4-10 channels XLA's fusions
    # re-count elementwise ops as often as the matmuls themselves.
    tcn.TCNConfig(channels=24, num_blocks=3, kernel_size=2, block_channels=(32, 16, 24)),
], ids=['tiny', 'mixed-widths'])
def test_analytic_flops_match_xla(cfg):
  t = 8
  module = tcn.TCN(cfg)
  x = jnp.zeros((B, t, cfg.width), jnp.float32)
  params = _random_params(module, x, seed=70)
  ratio = B * tcn.tcn_flops(cfg, (t, cfg.width)) / _xla_flops(module, params, x)
  assert abs(ratio - 1) <= 0.10, ratio


# ---------------------------------------------------------------------------------------
# The depth a cell gets: enough blocks to see the task's whole input, at the same budget.

# ListOps at its default (lengths up to 256) and at LRA's lengths (up to 1999; few examples,
# since only the spec is read).
_LISTOPS = {256: {}, 1999: dict(max_depth=10, min_length=501, max_length=1999,
                                num_examples=200)}


@pytest.mark.parametrize('size', ['tiny', 'small'])
@pytest.mark.parametrize('length', sorted(_LISTOPS))
def test_a_cell_is_deepened_to_see_the_whole_listops_expression(length, size):
  arch = archs.get('tcn')
  spec = data.spec_of('listops', **_LISTOPS[length])
  assert spec.longest_sequence == length
  default = arch.config(size)
  assert tcn.receptive_field(default) < length  # 253: the default depth would not do
  config = model_lib.resolve_config(arch, size, spec)
  assert tcn.receptive_field(config) >= length
  # The fewest blocks that do, narrower so that the budget holds.
  assert tcn.receptive_field(dataclasses.replace(config, num_blocks=config.num_blocks - 1)) < length
  assert config.num_blocks > default.num_blocks and config.channels < default.channels
  params = arch.param_count(config)
  assert abs(params / registry.budget(size) - 1) <= registry.BUDGET_TOLERANCE, params
  assert arch.coverage(config, length)['sees_whole_input']


def test_widths_solved_at_a_depth_are_cached_apart_from_the_default(monkeypatch, tmp_path):
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path))
  monkeypatch.setattr(registry, '_solved', functools.cache(registry._solved.__wrapped__))
  budget = registry.budget('small')
  default, deep = registry.solve_width('tcn', budget), registry.solve_width('tcn', budget, 9)
  cached = json.loads((tmp_path / 'widths.json').read_text())
  assert sorted(cached.values()) == sorted([[default, registry._count_at_width('tcn', default)],
                                            [deep, registry._count_at_width('tcn', deep, 9)]])
  assert sum(key.endswith(':depth=9') for key in cached) == 1 and deep < default


def test_a_task_within_the_receptive_field_keeps_the_default_depth():
  arch = archs.get('tcn')
  spec = data.spec_of('adding', length=200)
  assert spec.longest_sequence < tcn.receptive_field(arch.config('small'))
  assert model_lib.resolve_config(arch, 'small', spec) == arch.config('small')


def test_padding_does_not_deepen_a_cell():
  """A cell sees its real positions only, so `pad_to` leaves its depth as it is."""
  arch = archs.get('tcn')
  plain, padded = (data.spec_of('listops', **params) for params in ({}, {'pad_to': 600}))
  assert padded.length == 600 and padded.longest_sequence == plain.longest_sequence == 256
  assert (model_lib.resolve_config(arch, 'tiny', padded)
          == model_lib.resolve_config(arch, 'tiny', plain))


def test_a_seq2seq_cell_covers_source_and_target():
  """A causal backbone reads a seq2seq example as one sequence, source then target."""
  arch = archs.get('tcn')
  # Each side alone fits the default 253 steps; together they do not.
  spec = dataclasses.replace(data.spec_of('translate'), length=200, target_length=100)
  config = model_lib.resolve_config(arch, 'tiny', spec)
  assert tcn.receptive_field(config) >= 300 > tcn.receptive_field(arch.config('tiny'))


def _tcn_cell(**arch_overrides):
  train = TrainConfig(steps=2, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                      eval_batch_size=16)
  return Cell('tcn', 'adding', 'tiny', task_params={'length': 300, 'eval_size': 16},
              arch_overrides=arch_overrides, train=train, fast_compile=True)


@pytest.mark.slow  # two cells through the whole harness
def test_a_suites_depth_wins_and_its_record_and_tables_say_what_it_cannot_see():
  """An explicit num_blocks is kept, and where its receptive field (13) misses part of the
  input (300 steps), the record and every table built from it say so."""
  shallow = runner.run_cell(_tcn_cell(num_blocks=2), suite='t', run_id='t', env={})
  covering = runner.run_cell(_tcn_cell(), suite='t', run_id='t', env={})
  assert shallow['status'] == covering['status'] == 'ok'
  assert shallow['config']['arch'].num_blocks == 2  # the explicit choice stands
  assert shallow['config']['coverage'] == {'receptive_field': 13, 'input_length': 300,
                                           'sees_whole_input': False}
  assert covering['config']['arch'].num_blocks == 7  # 509 >= 300 > 253
  assert covering['config']['coverage']['sees_whole_input']
  for table in (tables.metric_table, tables.loss_table, tables.perf_table):
    assert records_lib.PARTIAL_VIEW_MARK in table([shallow]).splitlines()[-1]
    assert records_lib.PARTIAL_VIEW_MARK not in table([covering])
  assert records_lib.PARTIAL_VIEW_NOTE in report.summary_markdown([shallow])
  assert records_lib.PARTIAL_VIEW_NOTE not in report.summary_markdown([covering])
  compared = compare.compare([shallow], [shallow], timing=False)
  assert compared.rows and all(records_lib.PARTIAL_VIEW_MARK in r.cell for r in compared.rows)
  assert records_lib.PARTIAL_VIEW_NOTE + '.' in compared.warnings


def test_a_cell_evaluated_at_longer_lengths_is_deepened_for_the_longest():
  """Length generalisation reads longer sequences than training: the TCN is deepened to
  see the longest evaluated one whole (reverse_string at n=200: the output at 2n-1 needs
  input 0, 400 positions in all), and the record's coverage says so."""
  cell = Cell('tcn', 'reverse_string', 'tiny', 0, {'length': 8, 'min_length': 1,
                                                   'eval_size': 8}, eval_lengths=(200,))
  arch, config, _, _ = runner.prepare(cell, build_task=False)
  assert runner.longest_input(cell, data.spec_of('reverse_string', **cell.task_params)) == 400
  assert tcn.receptive_field(config) >= 400 > tcn.receptive_field(arch.config('tiny'))
  trained_only = runner.prepare(dataclasses.replace(cell, eval_lengths=()), build_task=False)
  assert trained_only[1] == arch.config('tiny')
