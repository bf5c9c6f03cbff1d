"""Plug-ins: a user's architecture or task from the user's own file, module or installed
package takes part in suites, sizing, FLOP counts and the registry's tests."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from archbench import archs
from archbench import data
from archbench.benchmarks import config as config_lib
from archbench.benchmarks import plugins
from archbench.benchmarks.core import UsageError

REPO = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = REPO / 'examples' / 'mingru.py'
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}

# An entry-point plug-in: a task (label = the majority bit of T bits) in an installed
# package, found through its distribution's entry_points.txt.
_MAJORITY = '''
import functools
import jax, jax.numpy as jnp, numpy as np
from archbench import data
from archbench.data.spec import Task, TaskSpec, eval_key

def batch(key, batch_size, length):
  bits = jax.random.bernoulli(key, 0.5, (batch_size, length)).astype(jnp.int32)
  return {'inputs': bits, 'targets': (2 * bits.sum(1) > length).astype(jnp.int32)}

@data.register('majority', 'majority bit of T random bits (accuracy)')
def make_majority(seed: int = 0, length: int = 9, eval_size: int = 64) -> Task:
  generate = functools.partial(batch, length=length)
  spec = TaskSpec(name='majority', kind='classify', length=length, vocab_size=2,
                  num_classes=2, metric='eval/accuracy', higher_is_better=True,
                  baselines={'eval/accuracy': 0.5}, solved=0.95)
  held_out = jax.tree_util.tree_map(np.asarray, generate(eval_key(seed), eval_size))
  return Task(spec, {'length': length, 'eval_size': eval_size},
              lambda key, b: generate(key, b), held_out)
'''


@pytest.fixture
def isolated_registries(monkeypatch):
  """Registrations made by a test are undone after it (other tests enumerate the
  registries). The example's own registration, where `pytest --plugin examples/mingru.py`
  made one, is left out meanwhile, so that a test can load its copy of the file."""
  monkeypatch.setattr(archs.registry, '_REGISTRY', {
      name: spec for name, spec in archs.registry._REGISTRY.items() if name != 'mingru'})
  monkeypatch.setattr(data.registry, '_REGISTRY', dict(data.registry._REGISTRY))
  monkeypatch.setattr(plugins, '_loaded', list(plugins._loaded))
  before = set(sys.modules)
  yield
  for name in set(sys.modules) - before:
    if name.startswith('archbench_plugin_') or name == 'majority_plugin':
      del sys.modules[name]


def test_plugin_file_registers_once_and_joins_every_suite(isolated_registries, tmp_path):
  path = tmp_path / 'mingru.py'
  shutil.copy(EXAMPLE, path)
  plugins.load(str(path))
  plugins.load(str(path))  # loading twice is a no-op, not "registered twice"
  spec = archs.get('mingru')
  for size in archs.SIZES:  # sized to every budget like a built-in
    count = archs.registry.budget_params('mingru', size)
    assert abs(count - archs.SIZES[size]) <= 0.1 * archs.SIZES[size], (size, count)
  smoke = config_lib.cells(config_lib.load('smoke'))
  # The first four tasks, and the speech task every sequence architecture runs.
  assert {c.task for c in smoke if c.arch == 'mingru'} == {'adding', 'copy', 'digits',
                                                            'translate', 'spoken_digits_mini'}
  assert all(c.arch_overrides == {'num_layers': 1} for c in smoke if c.arch == 'mingru')
  assert spec.flops(spec.config('small'), (16, spec.config('small').width)) > 0


def test_width_cache_is_keyed_by_the_plugins_own_code(isolated_registries, tmp_path):
  path = tmp_path / 'mingru.py'
  shutil.copy(EXAMPLE, path)
  plugins.load(str(path))
  before = archs.registry._code_digest('mingru')
  assert before != archs.registry._code_digest('lstm')
  path.write_text(path.read_text() + '\n# an edit\n')
  assert archs.registry._code_digest('mingru') != before


def test_entry_point_plugin_registers_a_task(isolated_registries, tmp_path, monkeypatch):
  (tmp_path / 'majority_plugin.py').write_text(_MAJORITY)
  info = tmp_path / 'majority_plugin-0.1.dist-info'
  info.mkdir()
  (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: majority-plugin\nVersion: 0.1\n')
  (info / 'entry_points.txt').write_text(
      f'[{plugins.ENTRY_POINT_GROUP}]\nmajority = majority_plugin\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  plugins.load_entry_points()
  assert 'majority' in data.names() and 'majority_plugin' in plugins.loaded()
  task = data.build('majority', length=5, eval_size=8)
  assert task.eval_data['targets'].tolist() == (
      (2 * task.eval_data['inputs'].sum(1) > 5).astype(int).tolist())


def test_broken_plugins_are_one_line_usage_errors(isolated_registries, tmp_path):
  broken = tmp_path / 'broken.py'
  broken.write_text('raise RuntimeError("my bug")\n')
  with pytest.raises(UsageError, match='broken.py failed to load: RuntimeError: my bug'):
    plugins.load(str(broken))
  with pytest.raises(UsageError, match='no such file'):
    plugins.load(str(tmp_path / 'missing.py'))
  with pytest.raises(UsageError, match='no module named'):
    plugins.load('surely_not_a_module_here')


@pytest.mark.slow
def test_plugin_from_outside_the_repository_runs_in_smoke(tmp_path):
  """One command, from a directory outside the repository, with the default output
  directory: the plug-in runs with smoke's settings on the smoke tasks that cover every
  task kind, in smoke's worker processes, and its records are like a built-in's."""
  shutil.copy(EXAMPLE, tmp_path / 'mingru.py')
  proc = subprocess.run(
      [sys.executable, '-m', 'archbench.benchmarks', 'run', '--suite', 'smoke', '--plugin',
       'mingru.py', '--archs', 'mingru', '--tasks', 'adding,copy,digits,translate'],
      cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (run,) = (tmp_path / 'results' / 'runs').iterdir()
  records = [json.loads(l) for l in (run / 'results.jsonl').read_text().splitlines()]
  assert sorted(r['task'] for r in records) == ['adding', 'copy', 'digits', 'translate']
  for r in records:
    assert r['status'] == 'ok', r['error']
    assert r['env']['plugins'] == ['mingru.py'] and r['env']['workers'] == 2
    assert r['config']['arch']['num_layers'] == 1  # smoke's depth, set through depth_fields
    assert r['perf']['flops_per_step'] > 0 and r['perf']['backbone_params'] > 0


@pytest.mark.slow
def test_pytest_can_be_pointed_at_a_plugin():
  """`pytest --plugin PATH`: the registry-parametrised tests cover the plug-in."""
  proc = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--plugin',
       str(EXAMPLE), 'tests/test_archs.py', 'tests/test_flops.py', '-k', 'mingru'],
      cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:]
  summary = proc.stdout.strip().splitlines()[-1]
  passed = int(summary.split(' passed')[0].split()[-1])
  # shapes, 4 budgets, 4 widths, depth, causality, forward and training FLOPs
  assert passed >= 13 and 'failed' not in summary, summary
