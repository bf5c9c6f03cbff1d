"""Evaluators (harness/evaluators/): the registry and its contract on a tiny cell (hooks at
their points, with the cell's state; what they write lands in the record; an evaluator that
replaces the evaluation), how cells choose them and keep their identity, and the example
plug-in examples/weight_norm.py end to end: `archbench run --plugin` from a temporary
directory, its section in summary.md and its plot in report.html."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import types

import pytest

from archbench.benchmarks import config as config_lib
from archbench.benchmarks import plugins
from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.harness import evaluators, runner
from archbench.benchmarks.harness.evaluators import base
from archbench.benchmarks.results import records, report, sections

REPO = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = REPO / 'examples' / 'weight_norm.py'
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
# 6 steps in dispatches of 2: hooks after steps 2, 4 and 6.
TC = TrainConfig(steps=6, batch_size=8, steps_per_dispatch=2, warmup_steps=1,
                 eval_batch_size=32)
PARAMS = {'length': 8, 'eval_size': 32}


@pytest.fixture(scope='module')
def registries():
  """The test's evaluators, the example plug-in and its section, registered for this module
  and removed after it (other tests enumerate the registries)."""
  # The built-ins first: they register when imported, once per process, so a registry
  # saved without them and restored after the test would lose them for the next module.
  evaluators.names()
  saved = (dict(base._REGISTRY), dict(sections._SECTIONS), list(plugins._loaded))
  modules = set(sys.modules)
  plugins.load(str(EXAMPLE))
  calls = []

  def before(ctx):
    calls.append(('before', int(ctx.state.step)))
    ctx.metrics['probe/before'] = 1.0

  def dispatch(ctx, step):
    calls.append(('dispatch', step, int(ctx.state.step)))
    ctx.curves.setdefault('probe/steps', []).append([step, float(step)])

  def after(ctx):
    calls.append(('after', int(ctx.state.step), 'eval/loss' in ctx.metrics))
    ctx.perf['probe_after'] = 1

  evaluators.register(evaluators.EvaluatorSpec(
      'probe_hooks', 'records when its hooks run', before_training=before,
      after_dispatch=dispatch, after_training=after, metrics=('probe/before',),
      perf=('probe_after',), curves=('probe/steps',)))
  evaluators.register(evaluators.EvaluatorSpec(
      'probe_replaces', 'stands in for the held-out evaluation', replaces_evaluation=True,
      after_training=lambda ctx: ctx.metrics.update({'probe/replaced': 1.0})))
  yield calls
  base._REGISTRY.clear()
  base._REGISTRY.update(saved[0])
  sections._SECTIONS.clear()
  sections._SECTIONS.update(saved[1])
  plugins._loaded[:] = saved[2]
  for name in set(sys.modules) - modules:
    if name.startswith('archbench_plugin_'):
      del sys.modules[name]


@pytest.fixture(scope='module')
def measured(registries):
  """One tiny cell with the hook recorder and the example's weight_norm: (record, calls)."""
  cell = Cell('lstm', 'adding', 'tiny', 0, PARAMS, train=TC, fast_compile=True,
              evaluators=('probe_hooks', 'weight_norm'))
  record = runner.run_cell(cell, suite='t', run_id='t', env={})
  assert record['status'] == 'ok', record['error']
  return record, list(registries)


def test_built_ins_come_first_in_hook_order_and_unknown_names_list_the_valid_ones(registries):
  assert evaluators.names()[:len(evaluators.BUILT_IN)] == list(evaluators.BUILT_IN)
  assert evaluators.names()[-3:] == ['weight_norm', 'probe_hooks', 'probe_replaces']
  with pytest.raises(KeyError, match="unknown evaluator 'nope'; valid: length_sweep, "):
    evaluators.get('nope')
  with pytest.raises(ValueError, match='registered twice'):
    evaluators.register(evaluators.EvaluatorSpec('gradient', 'again'))


def test_a_cell_runs_the_built_ins_its_study_asks_for_and_those_it_names(registries):
  plain = types.SimpleNamespace(score_samples=None, image_samples=None)
  text = types.SimpleNamespace(score_samples=len, image_samples=None)
  pixels = types.SimpleNamespace(score_samples=None, image_samples=object())

  def chosen(task=plain, **fields):
    cell = Cell('lstm', 'adding', 'tiny', 0, PARAMS, **fields)
    return [e.name for e in evaluators.for_cell(cell, task)]
  assert chosen() == []
  assert chosen(probes=('length', 'gradient')) == ['length_sweep', 'gradient']
  assert chosen(probes=('cost',)) == ['cost']
  assert chosen(eval_lengths=(8, 16)) == ['lengths']
  assert chosen(task=text) == ['sampling']
  assert chosen(task=pixels) == ['images']
  assert chosen(evaluators=('weight_norm', 'gradient')) == ['gradient', 'weight_norm']
  with pytest.raises(KeyError, match="unknown evaluator 'nope'"):
    chosen(evaluators=('nope',))


def test_evaluators_are_part_of_a_cells_identity_only_when_given():
  cell = Cell('lstm', 'adding', 'tiny', 0, PARAMS, train=TC)
  assert 'evaluators' not in cell.to_dict()
  named = Cell('lstm', 'adding', 'tiny', 0, PARAMS, train=TC, evaluators=('weight_norm',))
  assert named.digest != cell.digest and named.name.endswith('/+weight_norm')
  assert Cell.from_dict(named.to_dict()) == named
  assert Cell.from_dict(cell.to_dict()).digest == cell.digest


def test_a_suite_resolves_evaluators_into_its_cells(registries):
  config = config_lib.load('quick')
  with config.unlocked():
    config.evaluators = ('weight_norm,probe_hooks',)  # one command-line value: two names
    config.tasks.adding.evaluators = ('probe_replaces',)
  cells = config_lib.cells(config, archs_filter=['lstm'], tasks_filter=['adding', 'copy'])
  by_task = {c.task: c.evaluators for c in cells}
  assert by_task == {'adding': ('weight_norm', 'probe_hooks', 'probe_replaces'),
                     'copy': ('weight_norm', 'probe_hooks')}
  with config.unlocked():
    config.evaluators = ('nope',)
  with pytest.raises(UsageError, match="unknown evaluator 'nope'"):
    config_lib.cells(config, archs_filter=['lstm'], tasks_filter=['adding'])


def test_hooks_run_at_their_points_with_the_cells_state(measured):
  record, calls = measured
  assert calls == [('before', 0), ('dispatch', 2, 2), ('dispatch', 4, 4), ('dispatch', 6, 6),
                   ('after', 6, True)]  # after training, and after the held-out evaluation
  assert record['metrics']['probe/before'] == 1.0 and record['perf']['probe_after'] == 1
  assert record['curves']['probe/steps'] == [[2, 2.0], [4, 4.0], [6, 6.0]]
  assert [s for s, _ in record['curves']['train/loss']] == [2, 4, 6]


def test_the_example_records_the_norm_at_initialisation_and_after_every_dispatch(measured):
  record, _ = measured
  curve = record['curves']['weight_norm/global']
  metrics = record['metrics']
  assert [s for s, _ in curve] == [0, 2, 4, 6]
  assert metrics['weight_norm/init'] == curve[0][1] > 0
  assert metrics['weight_norm/final'] == curve[-1][1] != curve[0][1]  # training moved it
  assert metrics['weight_norm/growth'] == pytest.approx(curve[-1][1] / curve[0][1])


def test_an_evaluator_can_replace_the_held_out_evaluation(registries):
  cell = Cell('lstm', 'adding', 'tiny', 0, PARAMS, fast_compile=True,
              train=TrainConfig(steps=2, batch_size=8, steps_per_dispatch=2),
              evaluators=('probe_replaces',))
  record = runner.run_cell(cell, suite='t', run_id='t', env={})
  assert record['status'] == 'ok', record['error']
  assert record['metrics']['probe/replaced'] == 1.0
  assert not any(k.startswith(('eval/', 'baseline/')) for k in record['metrics'])
  assert 'solved' not in record['metrics'] and 'eval_compile_s' not in record['perf']
  assert 'device_peak_bytes' in record['perf']


def test_the_examples_section_renders_in_the_report(measured, tmp_path):
  record, _ = measured
  records.append_record(tmp_path / 'results.jsonl', record)
  report.write_summaries(tmp_path, plots=True)
  summary = (tmp_path / 'summary.md').read_text()
  assert '## Weight-matrix norm during training' in summary
  assert '| lstm | adding | tiny | 1 |' in summary
  assert (tmp_path / 'weight_norm.png').stat().st_size > 0
  assert 'alt="weight_norm.png"' in (tmp_path / 'report.html').read_text()
  assert sections.get('weight_norm').markdown([{**record, 'status': 'error'}]) == []


def test_list_shows_every_evaluator_with_what_it_writes(registries):
  lines = evaluators.list_lines(evaluators.describe(), 12)
  text = '\n'.join(lines)
  for name in (*evaluators.BUILT_IN, 'weight_norm'):
    assert f'\n  {name:12s} ' in text
  assert 'length/<L>/<metric>, ood/<metric>; report section length' in text
  assert 'curve weight_norm/global; report section weight_norm' in text


@pytest.mark.slow
def test_the_example_plugin_runs_from_a_temporary_directory(tmp_path):
  """`archbench run --plugin` with a copy of the example, two seeds in two worker
  processes (which load the plug-in), then `archbench report --plugin` rebuilding its
  section, and `archbench list --plugin` showing the evaluator."""
  shutil.copy(EXAMPLE, tmp_path / 'weight_norm.py')
  plugin, out = str(tmp_path / 'weight_norm.py'), tmp_path / 'run'
  run = subprocess.run(
      [sys.executable, '-m', 'archbench.benchmarks', 'run', '--plugin', plugin,
       '--archs', 'lstm', '--tasks', 'adding', '--size', 'tiny', '--workers', '2',
       '--config.seeds=0,1', '--config.fast_compile=True', '--config.train.steps=4',
       '--config.train.steps_per_dispatch=2', '--config.train.batch_size=8',
       '--config.train.eval_batch_size=32', '--config.task.length=8',
       '--config.task.eval_size=32', '--config.evaluators=weight_norm', '--out', str(out)],
      cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  written = [json.loads(line) for line in (out / 'results.jsonl').read_text().splitlines()]
  assert sorted(r['seed'] for r in written) == [0, 1]
  assert all(len(r['curves']['weight_norm/global']) == 3 for r in written)
  assert '| lstm | adding | tiny | 2 |' in (out / 'summary.md').read_text()
  assert 'alt="weight_norm.png"' in (out / 'report.html').read_text()
  for name in ('summary.md', 'weight_norm.png', 'report.html'):
    (out / name).unlink()
  rebuilt = subprocess.run(
      [sys.executable, '-m', 'archbench.benchmarks', 'report', '--plugin', plugin, str(out)],
      cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
  assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
  assert '## Weight-matrix norm during training' in (out / 'summary.md').read_text()
  assert 'alt="weight_norm.png"' in (out / 'report.html').read_text()
  listed = subprocess.run(
      [sys.executable, '-m', 'archbench.benchmarks', 'list', '--plugin', plugin],
      cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
  assert listed.returncode == 0, listed.stderr[-3000:]
  assert '  weight_norm ' in listed.stdout and 'report section weight_norm' in listed.stdout
