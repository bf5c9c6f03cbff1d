"""End to end: the `archbench` command line (smoke suite, report, list, bad input) and the
harness's handling of failing cells."""
import csv
import io
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from record_schema import problems  # tests/record_schema.py

from archbench import __version__, archs
from archbench import data
from archbench.benchmarks import config as config_lib
from archbench.benchmarks import plugins
from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import evaluators, suite
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records as records_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
ENV_KEYS = ('python', 'jax', 'jaxlib', 'flax', 'optax', 'backend', 'device_kind',
            'device_count', 'cpu', 'git_commit', 'command', 'utc_time')
PERF_KEYS = ('params', 'compile_s', 'step_ms', 'examples_per_s', 'tokens_per_s',
             'flops_per_step', 'peak_bytes')


def archbench(*args, timeout=300, cwd=REPO):
  return subprocess.run([sys.executable, '-m', 'archbench.benchmarks', *map(str, args)],
                        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _plugin_flags():
  """--plugin for each plug-in this pytest loaded (`pytest --plugin PATH`)."""
  return [arg for source in plugins.loaded() for arg in ('--plugin', source)]


def _expected_smoke_cells():
  """(arch, task) pairs the smoke suite must run, from the registries themselves."""
  smoke = config_lib.load('smoke')
  pairs = set()
  for task_name, plan in smoke.tasks.items():
    spec = data.spec_of(task_name, **plan.params)
    for arch_name in plan.archs or smoke.archs or archs.names():
      if model_lib.incompatibility(archs.get(arch_name), spec) is None:
        pairs.add((arch_name, task_name))
  return pairs


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory):
  """`archbench run --suite smoke` once per session (about a minute on 2 CPU cores)."""
  out = tmp_path_factory.mktemp('smoke') / 'run'
  proc = archbench('run', '--suite', 'smoke', '--out', out, *_plugin_flags(), timeout=600)
  records = (records_lib.load_records(out / 'results.jsonl')
             if (out / 'results.jsonl').exists() else [])
  return proc, out, records


# ---------------------------------------------------------------------------------------
# The smoke suite.

@pytest.mark.slow
def test_smoke_exit_code_and_cells(smoke_run):
  proc, out, records = smoke_run
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr
  pairs = [(r['arch'], r['task']) for r in records]
  assert len(pairs) == len(set(pairs))  # one record per cell
  expected = _expected_smoke_cells()
  assert set(pairs) == expected
  # Every architecture appears; only image classification takes the CNN.
  assert {a for a, _ in expected} == set(archs.names())
  # Every task that needs no prepared data is in smoke.
  offline = {name for name in data.names() if not data.get(name).reads_data}
  assert {t for _, t in expected} == offline
  lines = (out / 'results.jsonl').read_text().splitlines()
  assert len(lines) == len(expected)


@pytest.mark.slow
def test_smoke_records_schema(smoke_run):
  _, _, records = smoke_run
  assert records
  run_ids = {r['run_id'] for r in records}
  assert len(run_ids) == 1
  plans = config_lib.load('smoke').tasks
  for r in records:
    where = f'{r["arch"]}/{r["task"]}'
    assert set(r) == set(records_lib.RECORD_KEYS), where
    assert r['schema'] == records_lib.SCHEMA
    assert problems(r) == [], where  # the JSON Schema (benchmarks/results/record.schema.json)
    # The record holds its cell, enough to run it again, and the cell's identity.
    assert r['cell_id'] == records_lib.cell_of(r).digest, where
    assert r['status'] == 'ok' and r['error'] is None, (where, r['error'])
    assert r['suite'] == 'smoke' and r['size'] == 'tiny' and r['seed'] == 0
    # The cell holds the plan's parameters as asked (an unset pad_to left out, as Cell
    # leaves it); config.task as the task resolved them (forecast's ar_order None becomes
    # the window length).
    asked_cell = Cell(r['arch'], r['task'], 'tiny', 0, dict(plans[r['task']].params))
    assert r['config']['cell']['task_params'] == asked_cell.task_params
    asked = {k: v for k, v in plans[r['task']].params.items() if v is not None}
    assert asked.items() <= r['config']['task'].items()
    metrics = r['metrics']
    task_spec = data.build(r['task'], **plans[r['task']].params).spec
    headline = r['config']['task_spec']['metric']
    assert headline == task_spec.metric
    assert isinstance(metrics[headline], float) and math.isfinite(metrics[headline]), where
    assert math.isfinite(metrics['train/loss'])
    # The training curve: the loss of every dispatch at its step, ending at the last one.
    steps, losses = zip(*r['curves']['train/loss'])
    assert list(steps) == sorted(set(steps)) and steps[-1] == metrics['train/steps'], where
    assert losses[-1] == metrics['train/loss'] and all(map(math.isfinite, losses)), where
    assert f'baseline/{headline}' in metrics
    assert any(k.startswith('baseline/') for k in metrics)
    perf = r['perf']
    for key in PERF_KEYS:
      assert isinstance(perf[key], (int, float)) and perf[key] > 0, (where, key, perf.get(key))
    # The recorded config describes the backbone fully: rebuilt from the record alone, it
    # has the recorded parameter count (smoke runs backbones at depth 1, so this is not the
    # size's budget); the model adds an adapter and a head around it.
    spec = archs.get(r['arch'])
    config = model_lib.replace_config(spec.config('tiny'), r['config']['arch'])
    expected = spec.param_count(config)
    if spec.input_kind == 'sequence' and perf['backbone_params'] != expected:
      # Learned position tables are sized by the task's length, not the counting length.
      assert getattr(config, 'positions', None) == 'learned', (where, expected)
    else:
      assert perf['backbone_params'] == expected, (where, perf['backbone_params'], expected)
    assert perf['backbone_params'] < perf['params']
    env = r['env']
    for key in ENV_KEYS:
      assert env.get(key) not in (None, ''), (where, key)
    assert env['backend'] == 'cpu' and env['device_count'] >= 1
    assert 'run' in env['command'] and 'smoke' in env['command']


@pytest.mark.slow
def test_smoke_summaries(smoke_run):
  _, out, records = smoke_run
  md = (out / 'summary.md').read_text()
  rows = (out / 'summary.csv').read_text()
  table = md.split('## Accuracy', 1)[1].split('##', 1)[0]
  lines = [l for l in table.splitlines() if l.startswith('|')]
  header = lines[0]
  for task in {r['task'] for r in records}:
    assert f' {task} (' in header, task
  row_names = [l.split('|')[1].strip() for l in lines[2:]]
  for arch in archs.names():
    assert arch in row_names, arch
  parsed = list(csv.DictReader(io.StringIO(rows)))
  assert len(parsed) == len(records)
  assert {(p['arch'], p['task']) for p in parsed} == {(r['arch'], r['task']) for r in records}
  assert all(p['status'] == 'ok' for p in parsed)


# ---------------------------------------------------------------------------------------
# report.

@pytest.mark.slow
def test_report_reproduces_summaries(smoke_run, tmp_path):
  _, out, _ = smoke_run
  copy = tmp_path / 'copy'
  shutil.copytree(out, copy)
  (copy / 'summary.md').unlink()
  (copy / 'summary.csv').unlink()
  proc = archbench('report', copy, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert (copy / 'summary.md').read_bytes() == (out / 'summary.md').read_bytes()
  assert (copy / 'summary.csv').read_bytes() == (out / 'summary.csv').read_bytes()


@pytest.mark.slow
def test_report_survives_torn_last_line(smoke_run, tmp_path):
  _, out, records = smoke_run
  copy = tmp_path / 'torn'
  shutil.copytree(out, copy)
  first = (out / 'results.jsonl').read_text().splitlines()[0]
  with open(copy / 'results.jsonl', 'a') as f:
    f.write(first[:len(first) // 2])  # a run killed mid-write
  proc = archbench('report', copy, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert f'{len(records)} records' in proc.stdout
  assert len(list(csv.DictReader(io.StringIO((copy / 'summary.csv').read_text())))) == len(records)
  assert f'{len(records)} cells, {len(records)} ok' in (copy / 'summary.md').read_text()


# ---------------------------------------------------------------------------------------
# Bad input: exit code 2, one line on stderr, no traceback.

BAD_INPUTS = {
    # name: (argv, words the message must contain)
    'unknown arch': (['run', '--archs', 'nope'], ['nope', *archs.names()]),
    'unknown arch (smoke)': (['run', '--suite', 'smoke', '--archs', 'nope'],
                             ['nope', *archs.names()]),
    'unknown task': (['run', '--suite', 'smoke', '--tasks', 'nope'], ['nope', *data.names()]),
    'unknown suite': (['run', '--suite', 'nope'], ['nope', *config_lib.suite_files()]),
    'unknown size': (['run', '--suite', 'smoke', '--size', 'huge'], ['huge', *archs.SIZES]),
    'malformed number': (['run', '--suite', 'smoke', '--seed', 'abc'], ['seed', 'abc']),
    'negative seed': (['run', '--suite', 'smoke', '--seed', '-1'], ['seed']),
    'seed too large': (['run', '--suite', 'smoke', '--seed', str(2**64)], ['seed']),
    'unknown flag': (['run', '--nope'], ['nope']),
    'unknown command': (['nope'], ['nope', 'list', 'run', 'report']),
    'no command': ([], ['list', 'run', 'report']),
    'incompatible pair': (['run', '--suite', 'smoke', '--archs', 'cnn', '--tasks', 'adding'],
                          ['cnn', 'adding']),
    'bidirectional on a causal task': (
        ['run', '--suite', 'smoke', '--archs', 'bilstm', '--tasks', 'translate'],
        ['bilstm', 'translate', 'bidirectional', 'causal']),
    'encoder-decoder on a classification task': (
        ['run', '--suite', 'smoke', '--archs', 'encdec', '--tasks', 'digits'],
        ['encdec', 'digits', 'seq2seq']),
    'bad worker count': (['run', '--suite', 'smoke', '--workers', '0'], ['workers']),
    'report without results': (['report', '{empty}'], ['results.jsonl']),
    'report without dir': (['report'], ['report']),
    'report of several runs without --out': (['report', '{empty}', '{empty}'], ['--out']),
    'reuse of a run that is not there': (['run', '--suite', 'smoke', '--reuse', '{empty}/nope'],
                                         ['nope', 'results.jsonl']),
    'reuse with --resume': (['run', '--resume', '{empty}', '--reuse', '{empty}'],
                            ['--resume', '--reuse']),
    'unknown dataset': (['data', 'prepare', 'nope'], ['nope', 'mnist', 'fashion_mnist',
                                                      'cifar10', 'imdb', 'shakespeare',
                                                      'speech_commands', 'spoken_digits']),
    'data without prepare': (['data'], ['prepare', 'mnist']),
    'data prepare without name': (['data', 'prepare'], ['prepare', 'mnist']),
    'task name for a dataset': (['data', 'prepare', 'smnist'], ['smnist', 'mnist']),
    # Configuration: bad keys name the valid ones; bad values the type; all before any run.
    'unknown config key': (['run', '--config.train.stepz=3'],
                           ['train.stepz', 'steps', 'batch_size', 'lr']),
    'unknown config section': (['run', '--config.trian.steps=3'],
                               ['trian', 'train', 'tasks', 'seeds']),
    'unknown key in a task plan': (['run', '--config.tasks.adding.params.lenght=3'],
                                   ['lenght', 'length', 'eval_size']),
    'non-numeric config value': (['run', '--config.train.steps=abc'],
                                 ['train.steps', 'abc', 'int']),
    'zero steps': (['run', '--config.train.steps=0'], ['train.steps', '> 0']),
    'negative learning rate': (['run', '--config.train.lr=-1'], ['train.lr']),
    'negative length': (['run', '--tasks', 'adding', '--config.task.length=-5'],
                        ['adding', 'length', '-5']),
    'bad backbone value': (['run', '--archs', 'lstm', '--tasks', 'adding',
                            '--config.arch.hidden=-4'], ['lstm', 'hidden']),
    'override no task has': (['run', '--tasks', 'digits', '--config.task.length=5'],
                             ['task.length', 'digits']),
    'override no arch has': (['run', '--archs', 'lstm', '--tasks', 'adding',
                              '--config.arch.num_heads=2'], ['arch.num_heads']),
    'suite and config file': (['run', '--suite', 'smoke', '--config', '{py}'],
                              ['--suite', '--config']),
    'missing config file': (['run', '--config', '/nonexistent/suite.py'],
                            ['/nonexistent/suite.py']),
    'config file without get_config': (['run', '--config', '{py}'], ['get_config']),
    'config file that raises': (['run', '--config', '{bad}'], ['NameError', 'oops']),
    'empty archs': (['run', '--archs', ''], ['--archs']),
    'empty tasks': (['run', '--tasks', ''], ['--tasks']),
    'empty size': (['run', '--size', ''], ['--size']),
    'out is a file': (['run', '--archs', 'rnn', '--tasks', 'adding', '--out', '{py}'],
                      ['--out', 'file']),
    'out cannot be made': (['run', '--archs', 'rnn', '--tasks', 'adding', '--out',
                            '/proc/forbidden/x'], ['--out', '/proc/forbidden/x']),
    'from_record without line': (['run', '--from_record', '{py}'], ['--from_record', ':N']),
    'from_record past the end': (['run', '--from_record', '{empty}/results.jsonl:3'],
                                 ['--from_record']),
    'missing plugin file': (['run', '--plugin', '/nonexistent/p.py'], ['/nonexistent/p.py']),
    'plugin module not found': (['run', '--plugin', 'no_such_module_x'], ['no_such_module_x']),
    'report of garbage': (['report', '{garbage}'], ['no readable record']),
    # Each command takes its own flags only: another command's is refused by name.
    'compare with --resume': (['compare', 'A', 'B', '--resume', 'X'],
                              ['compare does not take --resume', '--json', '--timing']),
    'list with --out': (['list', '--out', 'X'], ['list does not take --out', '--suite']),
    'report with a flag': (['report', '{empty}', '--json'], ['report does not take --json']),
    'compare with an override': (['compare', 'A', 'B', '--config.train.steps=3'],
                                 ['compare does not take --config']),
    'negated bool of another command': (['env', '--notiming'], ['env does not take --timing']),
    'reproduce with --size': (['reproduce', 'chomsky-cpu', '--size', 'tiny'],
                              ['reproduce does not take --size']),
    'reproduce NAME with --timing': (['reproduce', 'chomsky-cpu', '--timing'],
                                     ['--timing', 'paper']),
    'reproduce NAME with --config': (['reproduce', 'chomsky-cpu', '--config', '{py}'],
                                     ['reproduce', 'NAME', '--config']),
    'reproduce DIR with an override': (['reproduce', '{empty}', '--config.train.steps=3'],
                                       ['--config', 'reproduce DIR']),
    'reproduce filtered to no row': (['reproduce', 'chomsky-cpu', '--archs', 'cnn'],
                                     ['--archs cnn', 'no row', 'rnn', 'parity_check']),
    'reproduce with a bad override': (['reproduce', 'chomsky-cpu', '--config.train.stepz=3'],
                                      ['train.stepz', 'steps']),
    'resume with a filter': (['run', '--resume', '{empty}', '--archs', 'rnn'],
                             ['--resume', '--archs']),
    'resume with an override': (['run', '--resume', '{empty}', '--config.train.steps=3'],
                                ['--resume', '--config']),
    'from_record with a filter': (['run', '--from_record', '{empty}/results.jsonl:1',
                                   '--tasks', 'adding'], ['--from_record', '--tasks']),
    'estimate without rates': (['estimate', '--rates', '{empty}/nope'], ['--rates', 'nope']),
}


def _bad_input_argv(case, tmp_path):
  argv, words = BAD_INPUTS[case]
  (tmp_path / 'suite.py').write_text('')
  (tmp_path / 'bad.py').write_text('def get_config():\n  raise NameError("oops")\n')
  (tmp_path / 'results.jsonl').write_text('')
  (tmp_path / 'garbage').mkdir(exist_ok=True)
  (tmp_path / 'garbage' / 'results.jsonl').write_text('not json\n{"half": \n')
  argv = [a.replace('{empty}', str(tmp_path)).replace('{py}', str(tmp_path / 'suite.py'))
          .replace('{bad}', str(tmp_path / 'bad.py'))
          .replace('{garbage}', str(tmp_path / 'garbage')) for a in argv]
  return argv, words


def _check_one_line(code, stderr, words):
  assert 'Traceback' not in stderr, stderr[-2000:]
  assert code == 2, (code, stderr[-2000:])
  lines = stderr.strip().splitlines()
  assert len(lines) == 1, stderr
  assert lines[0].startswith('archbench: error:')
  for word in words:
    assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize('case', list(BAD_INPUTS))
def test_bad_input(case, tmp_path, capsys):
  """In-process (a subprocess per case would spend minutes starting JAX): cli.run is the
  whole command but for sys.exit; test_bad_input_from_the_shell covers the entry point."""
  from archbench.benchmarks import cli
  argv, words = _bad_input_argv(case, tmp_path)
  code = cli.run(['archbench', *argv])
  _check_one_line(code, capsys.readouterr().err, words)


@pytest.mark.slow
@pytest.mark.parametrize('case', ['unknown config key', 'negative length', 'out is a file',
                                  'compare with --resume'])
def test_bad_input_from_the_shell(case, tmp_path):
  argv, words = _bad_input_argv(case, tmp_path)
  proc = archbench(*argv, timeout=120)
  _check_one_line(proc.returncode, proc.stderr, words)


def test_default_suite_is_registered():
  """`archbench run` without --suite must run a suite that exists."""
  from archbench.benchmarks import commands
  assert commands.DEFAULT_SUITE in config_lib.suite_files()


def test_version_alone(capsys):
  """`archbench --version` prints archbench.__version__; given with a command it is that
  command's flag, which none takes."""
  from archbench.benchmarks import cli
  assert cli.run(['archbench', '--version']) == 0
  assert capsys.readouterr().out == f'archbench {__version__}\n'
  assert cli.run(['archbench', 'list', '--version']) == 2
  assert "Unknown command line flag 'version'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# list.

def _list(*args, capsys):
  """`archbench list` in-process (its subprocess would spend its time starting up)."""
  from archbench.benchmarks import cli
  code = cli.run(['archbench', 'list', *args])
  return code, capsys.readouterr().out


def test_list_names_everything(capsys):
  code, out = _list(capsys=capsys)
  assert code == 0
  for name in [*archs.names(), *data.names(), *config_lib.suite_files(), *evaluators.names()]:
    assert name in out, name
  # Each suite lists its config paths.
  assert ('tasks.{adding,copy,digits,translate,lm,forecast}.{params,train,archs,arch_train,'
          'arch_config,arch_variants,sweep,seeds,arch_seeds,batch_sizes,eval_lengths,'
          'evaluators}.*, execution.*, train.*, task.*, arch.*') in out


def test_list_json_params(capsys):
  code, out = _list('--json', capsys=capsys)
  assert code == 0
  info = json.loads(out)
  assert set(info['archs']) == set(archs.names())
  assert set(info['tasks']) == set(data.names())
  assert set(info['suites']) == set(config_lib.suite_files())
  assert info['suites']['quick']['config']['tasks.adding.train.steps'] == 600
  for name, entry in info['archs'].items():
    spec = archs.get(name)
    assert set(entry['params']) == set(archs.SIZES)
    for size, count in entry['params'].items():
      assert count == spec.param_count(spec.config(size)), (name, size)
    expected_tasks = [t for t in data.names()
                      if model_lib.incompatibility(spec, data.spec_of(t)) is None]
    assert entry['tasks'] == expected_tasks
    assert entry['family'] == spec.family
    assert entry['kinds'] == model_lib.served_kinds(spec)
    if entry['causal'] != 'grid':
      assert entry['causal'] == {True: 'causal', False: 'bidirectional',
                                 None: 'configurable'}[spec.causal]
  # The TCN reports its receptive field: 1 + 2(k-1)(2^L - 1) for the small config.
  tcn_config = archs.get('tcn').config('small')
  assert info['archs']['tcn']['notes']['receptive field'] == (
      1 + 2 * (tcn_config.kernel_size - 1) * (2**tcn_config.num_blocks - 1))
  assert info['archs']['encdec']['kinds'] == ['seq2seq']
  assert 'seq2seq' not in info['archs']['bilstm']['kinds']
  # Dataset tasks are listed from their specs alone: no data read, baselines left to it.
  for name, entry in info['tasks'].items():
    assert entry['reads_data'] == data.get(name).reads_data
    assert (entry['baselines'] == {}) == entry['reads_data'], name
  assert 'smnist' in info['archs']['lstm']['tasks'] and 'smnist' not in info['archs']['cnn']['tasks']
  assert 'mnist' in info['archs']['cnn']['tasks']


def test_dataset_suite_is_apart_from_the_offline_suites():
  """`real` holds the tasks that need prepared data; the suites that must run anywhere
  hold none of them."""
  real = config_lib.load('real')
  assert real.tasks and all(data.get(t).reads_data for t in real.tasks)
  assert set(real.tasks) == {n for n in data.names() if data.get(n).reads_data}
  for name in ('smoke', 'quick', 'standard'):
    assert not any(data.get(t).reads_data for t in config_lib.load(name).tasks), name
  for line in ('Command:', 'Runtime:', 'Results:', 'archbench data prepare'):
    assert line in real.doc
  cells = config_lib.cells(real)  # planned from specs: works without the data
  # The TCN sees each whole sequence (784 pixels, 1024 bytes) by the default deepening, at
  # the budget, not by a depth override.
  tcn = archs.get('tcn')
  tcn_cells = [c for c in cells if c.arch == 'tcn']
  assert tcn_cells and not any(c.arch_overrides for c in tcn_cells)
  for c in tcn_cells:
    spec = data.spec_of(c.task, **c.task_params)
    config = model_lib.resolve_config(tcn, c.size, spec, c.arch_overrides)
    assert tcn.coverage(config, spec.longest_sequence)['sees_whole_input'], c.task


# ---------------------------------------------------------------------------------------
# Failing cells.

# Adam moves every parameter by ~lr per step whatever the gradient, and the clip is off:
# with lr = 1e30 the outputs overflow float32 within a few steps (loss inf/NaN).
_DIVERGE = TrainConfig(steps=5, batch_size=4, lr=1e30, warmup_steps=1, clip_norm=1e30,
                       steps_per_dispatch=5, eval_batch_size=16)
_OK = TrainConfig(steps=5, batch_size=4, lr=1e-3, warmup_steps=1, steps_per_dispatch=5,
                  eval_batch_size=16)
_SMALL_ADDING = {'length': 4, 'eval_size': 16}


@pytest.fixture(scope='module')
def failing_run(tmp_path_factory):
  out = tmp_path_factory.mktemp('failing')
  cells = [
      Cell('rnn', 'adding', 'tiny', task_params=_SMALL_ADDING, train=_DIVERGE),
      Cell('rnn', 'adding', 'tiny', seed=1, task_params=_SMALL_ADDING, train=_OK),
      Cell('rnn', 'copy', 'tiny', task_params={'length': 0}, train=_OK),
  ]
  records = suite.run_suite(cells, out, suite='failing',
                             progress=Progress(len(cells), log=lambda *_: None))
  return out, records


def test_diverged_cell_is_recorded_and_run_goes_on(failing_run):
  out, records = failing_run
  diverged, ok, _ = records
  assert diverged['status'] == 'diverged'
  assert diverged['error'] and 'Diverged' in diverged['error']
  assert ok['status'] == 'ok' and ok['error'] is None
  assert math.isfinite(ok['metrics']['eval/mse'])
  on_disk = records_lib.load_records(out / 'results.jsonl')
  assert len((out / 'results.jsonl').read_text().splitlines()) == 3
  assert [(r['seed'], r['status']) for r in on_disk[:2]] == [(0, 'diverged'), (1, 'ok')]
  assert [problems(r) for r in on_disk] == [[], [], []]  # failed records fit the schema too
  # What was measured before the failure is kept (the loss is non-finite: JSON null).
  assert 'train/loss' in on_disk[0]['metrics'] and on_disk[0]['metrics']['train/loss'] is None
  assert on_disk[0]['perf']['params'] > 0
  md = (out / 'summary.md').read_text()
  failed = md.split('## Failed cells', 1)[1]
  assert '`rnn/adding/tiny/s0`: **diverged**' in failed
  assert 'rnn/adding/tiny/s1' not in failed


def test_raising_cell_is_an_error_record(failing_run):
  out, records = failing_run
  error = records[2]
  # prepare() turns the task's ValueError into a UsageError; run_cell records it as 'error'.
  assert error['status'] == 'error'
  assert error['error'].startswith('UsageError:')
  assert 'length' in error['error'] and 'got 0' in error['error']
  assert error['metrics'] == {} and error['perf'] == {}
  assert error['config']['task'] == {'length': 0}
  on_disk = records_lib.load_records(out / 'results.jsonl')[2]
  assert on_disk['status'] == 'error' and set(on_disk) == set(records_lib.RECORD_KEYS)
  assert '`rnn/copy/tiny/s0`: **error**' in (out / 'summary.md').read_text()


def test_cli_exit_code_1_when_a_cell_fails(tmp_path, capsys):
  """A suite that diverges, made from flags alone (lr 1e30, no clipping), run through the
  CLI in-process: the failed cell is recorded and the exit code is 1."""
  from archbench.benchmarks import cli
  code = cli.run(['archbench', 'run', '--suite', 'smoke', '--archs', 'rnn', '--tasks',
                  'adding', '--workers', '1', '--config.train.lr=1e30',
                  '--config.train.clip_norm=1e30', '--out', str(tmp_path)])
  assert code == 1
  assert '0 ok, 1 failed' in capsys.readouterr().out
  (record,) = records_lib.load_records(tmp_path / 'results.jsonl')
  assert record['status'] == 'diverged'


# ---------------------------------------------------------------------------------------
# reproduce: the flows, called directly, and --archs/--tasks end to end.

def test_select_keeps_the_rows_and_claims_of_the_cells_that_run():
  from archbench.benchmarks.flows import reproduce
  from archbench.benchmarks.results import reproduction
  spec = reproduction.plain(config_lib.load_reproduction('chomsky-cpu').reproduction)
  assert reproduce.select(spec) is spec  # no filter: the whole reproduction
  one = reproduce.select(spec, ['rnn'], ['parity_check'])
  assert [(r['arch'], r['task']) for r in one['rows']] == [('rnn', 'parity_check')]
  assert one['claims'] == []  # every claim names the transformer too
  assert one['notes'][:-1] == spec['notes'] and '1 of 28 rows' in one['notes'][-1]
  two = reproduce.select(spec, ['rnn', 'transformer'], ['parity_check'])
  assert {(r['arch'], r['task']) for r in two['rows']} == {('rnn', 'parity_check'),
                                                           ('transformer', 'parity_check')}
  assert [(c['better'], c['task']) for c in two['claims']] == [('rnn', 'parity_check')]
  # A claim against the constant predictor needs only its model's cells.
  listops = reproduction.plain(config_lib.load_reproduction('lra-listops-cpu').reproduction)
  alone = reproduce.select(listops, ['transformer'])
  assert [(c['better'], c['than']) for c in alone['claims']] == [('transformer', ['baseline'])]
  assert {r['arch'] for r in alone['rows']} == {'transformer'}


def _tiny(config):
  """A reproduction's config cut to seconds: what --config.train.steps=... does."""
  with config.unlocked():
    config.train.steps, config.train.steps_per_dispatch, config.train.batch_size = 4, 4, 4
    config.train.eval_batch_size, config.task.eval_size, config.fast_compile = 16, 16, True
    config.task.length, config.tasks.parity_check.eval_lengths = 8, (12,)
  return config


def test_reproduce_flow_runs_and_judges_only_the_filtered_rows(tmp_path):
  from archbench.benchmarks.flows import report
  from archbench.benchmarks.flows import reproduce
  config = _tiny(config_lib.load_reproduction('chomsky-cpu'))
  out, records = reproduce.reproduce('chomsky-cpu', config, str(tmp_path / 'rep'),
                                     archs=['rnn'], tasks=['parity_check'])
  assert [(r['arch'], r['task'], r['status']) for r in records] == [
      ('rnn', 'parity_check', 'ok')]
  assert records[0]['metrics']['train/steps'] == 4
  judged = json.loads((out / 'reproduction.json').read_text())
  assert [(r['arch'], r['task']) for r in judged['rows']] == [('rnn', 'parity_check')]
  assert judged['rows'][0]['verdict'] in ('reproduced', 'same outcome', 'differs')  # not 'not run'
  assert judged['claims'] == []
  table = (out / 'reproduction.md').read_text().split('## Table', 1)[1].split('##', 1)[0]
  assert [l.split('|')[1:3] for l in table.splitlines() if l.startswith('| rnn')] == [
      [' rnn ', ' parity_check ']]
  assert sum(l.startswith('| ') for l in table.splitlines()) == 2  # header and that row
  # `archbench report DIR` re-judges the same rows from the saved spec.
  before = (out / 'reproduction.md').read_text()
  assert report.rebuild(out)[1] is True
  assert (out / 'reproduction.md').read_text() == before
  with pytest.raises(UsageError, match='already holds a run'):
    reproduce.reproduce('chomsky-cpu', config, str(out), archs=['rnn'], tasks=['parity_check'])


@pytest.mark.slow
def test_reproduce_archs_and_tasks_from_the_shell(tmp_path):
  """The issue's command, shortened by an override: one cell runs and one row is judged."""
  out = tmp_path / 'rep'
  proc = archbench('reproduce', 'chomsky-cpu', '--archs', 'rnn', '--tasks', 'parity_check',
                   '--config.train.steps=20', '--out', out, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  records = records_lib.load_records(out / 'results.jsonl')
  assert [(r['arch'], r['task']) for r in records] == [('rnn', 'parity_check')]
  assert records[0]['metrics']['train/steps'] == 20
  rows = json.loads((out / 'reproduction.json').read_text())['rows']
  assert [(r['arch'], r['task']) for r in rows] == [('rnn', 'parity_check')]
  assert '| rnn | parity_check |' in proc.stdout and '| lstm |' not in proc.stdout
  assert '1 ok, 0 failed' in proc.stdout


def test_rerun_flow_reruns_and_compares_only_the_filtered_records(failing_run, tmp_path):
  """`reproduce DIR --tasks adding --seed 1`, through the flow: the one matching record's
  cell runs again and is compared with it alone."""
  from archbench.benchmarks.flows import reproduce
  base, _ = failing_run
  out, result, cells = reproduce.rerun(str(base), str(tmp_path / 'again'), archs=['rnn'],
                                       tasks=['adding'], seed=1)
  assert [(c.arch, c.task, c.seed) for c in cells] == [('rnn', 'adding', 1)]
  (record,) = records_lib.load_records(out / 'results.jsonl')
  assert record['cell_id'] == records_lib.load_records(base / 'results.jsonl')[1]['cell_id']
  assert result.exit_code == 0 and (out / 'comparison.md').is_file()
  with pytest.raises(UsageError, match='no record'):
    reproduce.rerun(str(base), str(tmp_path / 'none'), tasks=['copy'], seed=5)
