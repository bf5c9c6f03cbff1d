"""Suites as configuration: the built-in suite files, how overrides combine, the cell and
its identity, and the command line that sets them (`--config.<path>=<value>`,
`--from_record`, `--help`)."""
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest

from archbench import archs
from archbench import data
from archbench.benchmarks import cli, commands
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.core import Cell, TrainConfig, UsageError

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}


def _mixed():
  """A suite with every kind of setting the resolution combines: suite, task, per-
  architecture training and seeds (the built-in suites hold no per-architecture
  exceptions since the fair-fights protocol)."""
  return config_lib.suite_config(
      name='mixed', doc='settings at every level', size='small',
      train=dict(batch_size=32, lr=3e-3, steps_per_dispatch=50),
      tasks={'adding': config_lib.task_plan({'length': 30}, {'steps': 600},
                                            archs=('rnn', 'lstm', 'transformer')),
             'copy': config_lib.task_plan({'length': 10}, {'steps': 800},
                                          arch_train={'gru': {'lr': 1e-2}},
                                          archs=('rnn', 'lstm', 'gru', 'transformer'),
                                          arch_seeds={'rnn': (0, 1, 2), 'gru': (0, 1, 2)}),
             'digits': config_lib.task_plan({}, {'steps': 300},
                                            arch_train={'cnn': {'steps': 150}},
                                            archs=('cnn', 'vit', 'bigru'),
                                            arch_seeds={'bigru': (0, 1, 2)})})


def _cells(suite='quick', **overrides):
  """The cells of a built-in suite (or of a suite config) with `overrides`
  ({'train.steps': 30}) applied the way --config.<path>=<value> applies them."""
  config = config_lib.load(suite) if isinstance(suite, str) else suite
  filters = {k: overrides.pop(k) for k in ('archs_filter', 'tasks_filter') if k in overrides}
  with config.unlocked():
    for path, value in overrides.items():
      *parents, key = path.split('.')
      node = config
      for p in parents:
        node = node[p]
      node[key] = value
  return config_lib.cells(config, **filters)


# ---------------------------------------------------------------------------------------
# The built-in suites.

@pytest.mark.parametrize('name', list(config_lib.suite_files()))
def test_builtin_suite_files(name):
  """Each file is a suite of that name whose docstring states the command, the runtime
  and the expected result (big_vision's config headers), and plans without error."""
  config = config_lib.load(name)
  assert config.name == name
  for line in ('Command:', 'Runtime:', 'Results'):
    assert line in config.doc, (name, line)
  assert f'--suite {name}' in config.doc or name == commands.DEFAULT_SUITE
  cells = config_lib.cells(config)
  assert cells and len({c.digest for c in cells}) == len(cells)
  # Every overridable leaf is plain data (what config_flags can parse and records hold).
  for path, value in config_lib.flatten(config).items():
    assert value is None or isinstance(value, (bool, int, float, str, tuple)), path


def test_suite_task_plans_hold_complete_settings():
  """A task's plan holds every generator parameter and training field, so that each one
  is there to override (config_flags cannot add keys)."""
  config = config_lib.load('quick')
  for name, plan in config.tasks.items():
    assert set(plan.params) == set(data.get(name).defaults), name
    assert set(plan.train) == {f.name for f in dataclasses.fields(TrainConfig)}, name
  assert config.tasks.adding.params.length == 30 and config.tasks.adding.train.steps == 600
  assert _mixed().tasks.copy.arch_train.gru.lr == 1e-2


def test_global_sections_cover_every_registered_field():
  config = config_lib.load('smoke')
  assert set(config.train) == {f.name for f in dataclasses.fields(TrainConfig)}
  assert all(v is None for section in config_lib.GLOBAL_SECTIONS
             for v in config[section].values())
  task_params = {p for n in data.names() for p in data.get(n).defaults}
  assert set(config.task) <= task_params and {'length', 'eval_size'} <= set(config.task)
  assert {'hidden', 'd_model', 'num_layers', 'num_heads', 'channels'} <= set(config.arch)


# ---------------------------------------------------------------------------------------
# How overrides combine: defaults < task plan < per-architecture < sweep < global.

def test_global_train_override_wins_over_task_and_arch_settings():
  base = {(c.arch, c.task): c for c in _cells(_mixed())}
  assert base['cnn', 'digits'].train.steps == 150  # a per-architecture setting
  assert base['vit', 'digits'].train.steps == 300  # a per-task setting
  cells = _cells(_mixed(), **{'train.steps': 30})
  assert {c.train.steps for c in cells} == {30}
  # The rest of each cell's training settings is untouched.
  for c in cells:
    assert dataclasses.replace(c.train, steps=base[c.arch, c.task].train.steps) == \
        base[c.arch, c.task].train


def test_per_arch_train_refines_the_task_plan():
  cells = {(c.arch, c.task): c for c in _cells(_mixed(), **{'tasks.copy.train.lr': 5e-4})}
  assert cells['lstm', 'copy'].train.lr == 5e-4
  assert cells['gru', 'copy'].train.lr == 1e-2  # its own setting still wins
  cells = {(c.arch, c.task): c for c in _cells(_mixed(), **{'tasks.copy.train.lr': 5e-4,
                                                            'train.lr': 2e-3})}
  assert cells['gru', 'copy'].train.lr == 2e-3  # the global one wins over both


def test_global_task_override_applies_to_tasks_that_have_the_parameter():
  cells = _cells(**{'task.length': 12})
  for c in cells:
    if 'length' in data.get(c.task).defaults:
      assert c.task_params['length'] == 12, c.name
    else:
      assert 'length' not in c.task_params, c.name
  assert {c.task for c in cells} == set(config_lib.load('quick').tasks)


def test_global_arch_override_applies_to_archs_that_have_the_field():
  cells = _cells(**{'arch.hidden': 24})
  for c in cells:
    fields = {f.name for f in dataclasses.fields(archs.get(c.arch).config_for_width(8))}
    assert (c.arch_overrides.get('hidden') == 24) == ('hidden' in fields), c.name


def test_override_that_nothing_in_the_run_has_is_an_error():
  with pytest.raises(UsageError, match='config.task.length'):
    _cells(tasks_filter=['digits'], **{'task.length': 5})
  with pytest.raises(UsageError, match='config.arch.num_heads'):
    _cells(archs_filter=['lstm'], tasks_filter=['adding'], **{'arch.num_heads': 2})


def test_sweep_and_global_override_of_the_swept_parameter():
  """A sweep makes one cell per value; overriding the swept parameter globally leaves one
  value, so the sweep's cells collapse into one per architecture and seed."""
  swept = _cells('lrd-cpu', tasks_filter=['adding'])
  assert sorted({c.task_params['length'] for c in swept}) == [16, 32, 64, 128]
  assert all(c.probes[0] == 'length' for c in swept)
  assert {c.probes for c in swept if c.task_params['length'] == 128} == {('length', 'gradient')}
  pinned = _cells('lrd-cpu', tasks_filter=['adding'], **{'task.length': 40})
  assert len(pinned) == len(swept) // 4 and {c.task_params['length'] for c in pinned} == {40}
  points = _cells('lrd-cpu', tasks_filter=['adding'], **{'tasks.adding.sweep.points': (8, 9)})
  assert sorted({c.task_params['length'] for c in points}) == [8, 9]


def test_depth_sets_each_architectures_declared_depth_fields():
  for c in _cells('smoke'):
    spec = archs.get(c.arch)
    assert all(c.arch_overrides[f] == 1 for f in spec.depth_fields), c.name
  assert _cells('smoke', tasks_filter=['translate'], archs_filter=['encdec'])[0] \
      .arch_overrides == {'encoder_layers': 1, 'decoder_layers': 1}


def test_seeds_per_pair_where_results_vary():
  """Three seeds on the pairs that ask for them, the suite's elsewhere; --seed replaces
  all. (quick runs three seeds everywhere.)"""
  seeds = {}
  for c in _cells(_mixed()):
    seeds.setdefault((c.arch, c.task), []).append(c.seed)
  assert seeds['rnn', 'copy'] == seeds['gru', 'copy'] == seeds['bigru', 'digits'] == [0, 1, 2]
  assert seeds['lstm', 'copy'] == seeds['transformer', 'copy'] == [0]
  assert {c.seed for c in _cells()} == {0, 1, 2}
  config = _mixed()
  assert {c.seed for c in config_lib.cells(config, seeds=[5])} == {5}
  assert len(config_lib.cells(config, seeds=[5])) == len(seeds)


def test_seeds_and_filters():
  cells = _cells(archs_filter=['lstm'], tasks_filter=['adding', 'copy'], **{'seeds': (3, 4)})
  assert [(c.task, c.seed) for c in cells] == [('adding', 3), ('adding', 4), ('copy', 3),
                                               ('copy', 4)]
  with pytest.raises(UsageError, match='seeds'):
    _cells(**{'seeds': ()})


# ---------------------------------------------------------------------------------------
# The cell and its identity.

def test_cell_round_trips_and_its_digest_names_every_setting():
  cell = Cell('lstm', 'adding', 'small', 3, {'length': 64, 'eval_size': 100},
              {'hidden': 32}, TrainConfig(steps=30), False, ('length',))
  again = Cell.from_dict(json.loads(json.dumps(cell.to_dict())))
  assert again == cell and again.digest == cell.digest
  changes = [dict(arch='gru'), dict(task='copy'), dict(size='tiny'), dict(seed=4),
             dict(task_params={'length': 65, 'eval_size': 100}),
             dict(arch_overrides={'hidden': 33}), dict(train=TrainConfig(steps=31)),
             dict(fast_compile=True), dict(probes=())]
  digests = {dataclasses.replace(cell, **change).digest for change in changes}
  assert len(digests) == len(changes) and cell.digest not in digests


def test_cell_digest_does_not_depend_on_enum_or_tuple_spelling():
  from archbench.archs import recurrent
  a = Cell('lstm', 'adding', 'tiny', arch_overrides={'cell': recurrent.CellKind.GRU})
  b = Cell('lstm', 'adding', 'tiny', arch_overrides={'cell': 'gru'})
  assert a.digest == b.digest


def test_train_config_refuses_bad_values():
  for bad in (dict(steps=0), dict(batch_size=-1), dict(lr=0.0), dict(warmup_steps=-1),
              dict(steps_per_dispatch=0), dict(steps='abc')):
    with pytest.raises(UsageError, match=f'train.{next(iter(bad))}'):
      TrainConfig(**bad)
  TrainConfig(warmup_steps=0, weight_decay=0.0)  # zero is fine where it means "none"


# ---------------------------------------------------------------------------------------
# The command line.

@pytest.mark.parametrize('argv', [['--help'], ['-h'], ['help'], ['run', '--help'],
                                  ['run', '-h'], ['list', '--help'], ['report', '--help'],
                                  ['data', '--help']])
def test_help(argv, capsys):
  assert cli.run(['archbench', *argv]) == 0
  out = capsys.readouterr().out
  assert out.startswith('usage: archbench')
  command = argv[0] if argv[0] in cli.COMMANDS else None
  if command:
    for name in cli.COMMANDS[command][2]:
      assert f'--{name}' in out, name
  if command == 'run':
    assert '--config.train.steps' in out and '--config.arch.hidden' in out


def test_list_suite_shows_every_path(capsys):
  assert cli.run(['archbench', 'list', '--suite', 'quick']) == 0
  out = capsys.readouterr().out
  assert '--config.tasks.adding.train.steps=600' in out
  assert '--config.train.steps=None' in out and '--config.tasks.copy.train.lr=0.003' in out
  assert '--config.tasks.adding.train.stop_at_target=True' in out


def test_a_suite_file_of_ones_own(tmp_path, capsys):
  """--config points at a user's file; its cells are what it says, overrides included."""
  path = tmp_path / 'mine.py'
  path.write_text(
      'from archbench.benchmarks.config import suite_config, task_plan\n'
      'def get_config():\n'
      '  return suite_config("mine", "My suite.", "tiny", {"adding": task_plan(\n'
      '      {"length": 9}, {"steps": 7})}, archs=("rnn", "gru"))\n')
  assert cli.run(['archbench', 'list', '--config', str(path)]) == 0
  assert '--config.tasks.adding.params.length=9' in capsys.readouterr().out
  _, flags, _ = cli.parse(['archbench', 'run', '--config', str(path),
                           '--config.train.batch_size=4'])
  cells = config_lib.cells(flags.config)
  assert [(c.arch, c.task_params['length'], c.train.steps, c.train.batch_size)
          for c in cells] == [('rnn', 9, 7, 4), ('gru', 9, 7, 4)]
  # FILE:ARG passes ARG to get_config, as config_flags does.
  with_arg = tmp_path / 'sized.py'
  with_arg.write_text(
      'from archbench.benchmarks.config import suite_config, task_plan\n'
      'def get_config(length):\n'
      '  return suite_config("sized", "Sized.", "tiny", {"adding": task_plan(\n'
      '      {"length": int(length)})}, archs=("rnn",))\n')
  _, flags, _ = cli.parse(['archbench', 'run', '--config', f'{with_arg}:11'])
  assert [c.task_params['length'] for c in config_lib.cells(flags.config)] == [11]


@pytest.mark.slow
def test_the_readme_example_end_to_end_and_from_record(tmp_path):
  """The issue's example, as written: one cell, 30 steps, T=64, LSTM hidden 32 overriding
  the budget, and the record holds those values; then the cell again from its record."""
  out = tmp_path / 'run'
  argv = [sys.executable, '-m', 'archbench.benchmarks', 'run', '--archs', 'lstm', '--tasks',
          'adding', '--config.train.steps=30', '--config.task.length=64',
          '--config.arch.hidden=32', '--seed', '0', '--out', str(out)]
  proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (record,) = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
  cell = record['config']['cell']
  assert (cell['arch'], cell['task'], cell['train']['steps'], cell['task_params']['length'],
          cell['arch_overrides']) == ('lstm', 'adding', 30, 64, {'hidden': 32})
  assert record['config']['arch']['hidden'] == 32 and record['config']['task']['length'] == 64
  assert record['metrics']['train/steps'] == 30
  assert record['config']['budget'] == {'size': 'small', 'params': 100_000,
                                        'overridden_by': ['hidden'], 'matched': 'steps',
                                        'steps': 30}
  assert record['perf']['backbone_params'] < 50_000  # well off the 100k budget, as asked

  again = tmp_path / 'again'
  proc = subprocess.run([sys.executable, '-m', 'archbench.benchmarks', 'run', '--from_record',
                         f'{out / "results.jsonl"}:1', '--out', str(again)], cwd=tmp_path,
                        env=ENV, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (rerun,) = [json.loads(l) for l in (again / 'results.jsonl').read_text().splitlines()]
  assert rerun['cell_id'] == record['cell_id'] and rerun['config']['cell'] == cell
  # Same cell, same machine, same process layout: the same numbers.
  assert rerun['metrics'] == record['metrics']


def test_from_record_reads_schema_1_records():
  """Records written before config.cell (the quick reference run of November 2026, kept as
  a fixture) rebuild their cells from the requested config: the recorded training settings
  exactly, and the task parameters the suite gives those tasks today (quick's training
  settings have changed since, under the fair-fights protocol)."""
  from archbench.benchmarks.results import records
  old = records.load_records(REPO / 'tests' / 'fixtures' / 'quick-cpu-schema1' / 'results.jsonl')
  assert old and old[0]['schema'] == 1
  today = {(c.arch, c.task, c.seed): c for c in config_lib.cells(config_lib.load('quick'))}
  matched = 0
  for r in old:
    cell = records.cell_of(r)
    assert (cell.arch, cell.task, cell.size, cell.seed) == (r['arch'], r['task'], r['size'],
                                                            r['seed'])
    assert dataclasses.asdict(cell.train) == {**dataclasses.asdict(TrainConfig()),
                                             **r['config']['train']}
    now = today.get((r['arch'], r['task'], r['seed']))
    if now is None:  # a pair quick no longer runs
      continue
    matched += 1
    # The task has gained parameters since (its validation split's size), and old records
    # hold parameters as the task resolved them (forecast's ar_order None became the
    # length): the same task, spelled out.
    added = set(now.task_params) - set(cell.task_params)
    assert added <= {'val_fraction', 'val_size', 'val_length'}, (cell.name, added)
    differ = {k for k in now.task_params
              if k not in added and now.task_params[k] != cell.task_params[k]}
    assert all(now.task_params[k] is None for k in differ), (cell.name, differ)
  assert matched >= 20
