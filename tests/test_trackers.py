"""Experiment trackers (`--config.log.*`): the interface run_suite feeds from each finished
cell's record, and the W&B runs it writes, offline (no account, no network), read back from
W&B's own files: a run's `run-<id>.wandb` is a LevelDB-style log of protobuf records
(wandb.proto.wandb_internal_pb2.Record), which this wandb reads only from its Go service, so
the test reads the framing by hand."""
import json
import math
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

from archbench.benchmarks import cli
from archbench.benchmarks.core import UsageError
from archbench.benchmarks.harness import provenance, suite
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import tensorboard_events, trackers, wandb_runs

wandb = pytest.importorskip('wandb', reason='wandb is the `wandb` extra (and in `test`)')
from wandb.proto import wandb_internal_pb2  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
COMMITTED = REPO / 'results' / 'quick-cpu'


@pytest.fixture(autouse=True)
def _wandb_home(tmp_path_factory, monkeypatch):
  """W&B's own files (settings, caches, staging, logs) in a temporary home, no WANDB_MODE
  or credentials of the machine's, and an unreachable server should anything try one."""
  home = tmp_path_factory.mktemp('wandb-home')
  for name in ('WANDB_CONFIG_DIR', 'WANDB_CACHE_DIR', 'WANDB_DATA_DIR', 'WANDB_ARTIFACT_DIR'):
    monkeypatch.setenv(name, str(home / name.lower()))
  monkeypatch.setenv('NETRC', str(home / 'no-netrc'))
  monkeypatch.setenv('WANDB_BASE_URL', 'http://127.0.0.1:9')
  for name in ('WANDB_MODE', 'WANDB_API_KEY', 'WANDB_DIR', 'WANDB_PROJECT', 'WANDB_ENTITY'):
    monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------
# Reading an offline run back.

def _log_records(path: pathlib.Path) -> list:
  """The protobuf records of a .wandb file: a 7-byte header (':W&B', 0xBEE1, version 0),
  then 32 KiB blocks of chunks, each (CRC-32 of its type byte and data, length, type: full,
  first, middle, last), a block's tail under 7 bytes padded with zeros."""
  data = path.read_bytes()
  assert struct.unpack('<4sHB', data[:7]) == (b':W&B', 0xBEE1, 0)
  out, i, pending = [], 7, b''
  while i + 7 <= len(data):
    left = 32768 - i % 32768
    if left < 7:
      i += left
      continue
    crc, length, kind = struct.unpack('<IHB', data[i:i + 7])
    if (crc, length, kind) == (0, 0, 0):  # zero padding to the end of the block
      i += left
      continue
    chunk = data[i + 7:i + 7 + length]
    assert crc == zlib.crc32(chunk, zlib.crc32(bytes([kind]))), f'bad CRC at {i} in {path}'
    pending += chunk
    i += 7 + length
    if kind in (1, 4):  # full, last
      out.append(wandb_internal_pb2.Record.FromString(pending))
      pending = b''
  assert not pending
  return out


def _key(item) -> str:
  return item.key or '.'.join(item.nested_key)


def _read_run(directory: pathlib.Path) -> dict:
  """One offline run: its run record, config, history (step, {key: value}) without W&B's own
  `_` keys, summary (its last value of each key), exit code and artifacts."""
  (path,) = directory.glob('run-*.wandb')
  out = {'run': None, 'config': {}, 'history': [], 'summary': {}, 'exit': None,
         'artifacts': []}
  for record in _log_records(path):
    kind = record.WhichOneof('record_type')
    if kind in ('run', 'config'):
      config = record.run.config if kind == 'run' else record.config
      out['run'] = record.run if kind == 'run' else out['run']
      out['config'].update({_key(i): json.loads(i.value_json) for i in config.update
                            if not _key(i).startswith('_')})
    elif kind == 'history':
      items = {_key(i): json.loads(i.value_json) for i in record.history.item}
      out['history'].append((record.history.step.num,
                             {k: v for k, v in items.items() if not k.startswith('_')}))
    elif kind == 'summary':
      out['summary'].update({_key(i): json.loads(i.value_json) for i in record.summary.update
                             if not _key(i).startswith('_')})
    elif kind == 'exit':
      out['exit'] = record.exit.exit_code
    elif kind == 'artifact':
      out['artifacts'].append(record.artifact)
  return out


def _offline_runs(root: pathlib.Path) -> dict[str, dict]:
  """Every offline run under root/wandb, by W&B run id; each id once."""
  runs = {}
  for directory in sorted((root / 'wandb').glob('offline-run-*')):
    run = _read_run(directory)
    assert run['run'].run_id not in runs, f'two offline runs of {run["run"].run_id}'
    runs[run['run'].run_id] = dict(run, directory=directory)
  return runs


def _wandb_core_children() -> list[int]:
  """This process's wandb-core children still running."""
  found = []
  for stat in pathlib.Path('/proc').glob('[0-9]*/stat'):
    try:
      text = stat.read_text()
    except OSError:
      continue
    name, rest = text[text.index('(') + 1:text.rindex(')')], text[text.rindex(')') + 2:].split()
    if name.startswith('wandb-core') and int(rest[1]) == os.getpid() and rest[0] != 'Z':
      found.append(int(stat.parent.name))
  return found


def _committed(n: int = 0) -> dict:
  return records_lib.load_records(COMMITTED / 'results.jsonl')[n]


def _check_cell_run(run: dict, record: dict, suite_name: str, run_id: str) -> None:
  """A cell's W&B run holds its record: identity, config, curves, final metrics, perf."""
  assert run['run'].run_id == wandb_runs.run_ids(run_id, record['cell_id'])
  assert run['run'].display_name == tensorboard_events.cell_name(record)
  assert (run['run'].run_group, run['run'].job_type) == (run_id, suite_name)
  assert list(run['run'].tags) == [suite_name, record['arch'], record['task'], record['size'],
                                   record['status']]
  for key in ('arch', 'task', 'size', 'seed', 'cell_id', 'status'):
    assert run['config'][key] == record[key], key
  assert run['config']['config'] == records_lib.to_jsonable(record['config'])
  assert run['config']['env'] == record['env']
  # Every finite curve point at its step, the steps increasing, each once.
  steps = [step for step, _ in run['history']]
  assert steps == sorted(set(steps))
  logged = {(key, step): value for step, values in run['history'] for key, value in values.items()}
  expected = {(key, step): value for key, curve in record['curves'].items()
              for step, value in curve if value is not None and math.isfinite(value)}
  assert logged == expected
  for key, value in record['metrics'].items():
    assert run['summary'][key] == value, key
  for key, value in record['perf'].items():
    assert run['summary'][f'perf/{key}'] == value, key
  assert run['summary']['status'] == record['status']
  assert run['exit'] == (0 if record['status'] == 'ok' else 1)


# ---------------------------------------------------------------------------------------
# The W&B tracker, fed records directly (no training).

def test_a_committed_record_and_its_run_read_back_from_the_offline_files(tmp_path):
  record = _committed()
  assert len(record['curves']['train/loss']) > 1 and 'val/loss' in record['curves']
  for name in ('results.jsonl', 'summary.md', 'report.html'):
    shutil.copyfile(COMMITTED / name, tmp_path / name)
  info = {'run_id': record['run_id'], 'suite': record['suite'], 'cells': 75}
  tracker = wandb_runs.WandB()
  tracker.start(tmp_path, info)
  try:
    tracker.write_cell(record)
    assert _wandb_core_children()  # the service W&B started, which close() stops
    tracker.finish(tmp_path)
  finally:
    tracker.close()
  assert not _wandb_core_children()
  runs = _offline_runs(tmp_path)
  cell_id = wandb_runs.run_ids(record['run_id'], record['cell_id'])
  suite_id = wandb_runs.run_ids(record['run_id'])
  assert set(runs) == {cell_id, suite_id}
  _check_cell_run(runs[cell_id], record, 'quick', record['run_id'])
  # The validation curve and the training loss share steps: one history row each.
  (row,) = [values for step, values in runs[cell_id]['history'] if step == 100]
  assert set(row) == {'train/loss', 'val/loss', 'val/mse', 'val/mae'}

  # The suite run: the run's files as one artifact, copied into its own directory.
  run = runs[suite_id]
  assert (run['run'].display_name, run['run'].run_group) == (record['run_id'], record['run_id'])
  assert run['run'].job_type == 'suite' and run['config'] == info
  assert run['summary']['records'] == 75 and run['summary']['status/ok'] == 75
  (artifact,) = run['artifacts']
  assert (artifact.name, artifact.type) == ('quick-run', wandb_runs.ARTIFACT_TYPE)
  files = {entry.path: pathlib.Path(entry.local_path) for entry in artifact.manifest.contents}
  assert set(files) == {'results.jsonl', 'summary.md', 'report.html'}
  for name, path in files.items():
    assert path.is_relative_to(run['directory'])
    assert path.read_bytes() == (COMMITTED / name).read_bytes()


def test_gaps_divergence_and_a_cell_recorded_again(tmp_path):
  """Curves with different steps merge in step order; a null (a non-finite value) is left
  out; a cell that did not finish ok is a failed W&B run; recorded again, it replaces its
  offline run rather than adding one."""
  record = {'suite': 's', 'run_id': 'r-2026-01-01T00:00:00Z', 'arch': 'lstm', 'task': 'copy',
            'size': 'tiny', 'seed': 3, 'cell_id': 'c' * 16, 'status': 'diverged',
            'error': 'train/loss is nan at step 30', 'config': {'train': {'lr': 0.1}},
            'env': {'backend': 'cpu'}, 'metrics': {'train/loss': None, 'train/steps': 30},
            'perf': {'step_ms': 1.5},
            'curves': {'train/loss': [[10, 2.0], [20, 1.0], [30, None]],
                       'val/accuracy': [[15, 0.25], [20, 0.5]]}}
  tracker = wandb_runs.WandB(directory=str(tmp_path / 'elsewhere'))
  tracker.start(tmp_path, {'run_id': record['run_id'], 'suite': 's'})
  try:
    tracker.write_cell(dict(record, error='first'))
    tracker.write_cell(record)
  finally:
    tracker.close()
  assert not (tmp_path / 'wandb').exists()
  (run,) = _offline_runs(tmp_path / 'elsewhere').values()
  assert run['history'] == [(10, {'train/loss': 2.0}), (15, {'val/accuracy': 0.25}),
                            (20, {'train/loss': 1.0, 'val/accuracy': 0.5})]
  assert run['summary']['train/loss'] is None and run['summary']['train/steps'] == 30
  assert run['summary']['error'] == record['error'] and run['run'].notes == record['error']
  _check_cell_run(run, record, 's', record['run_id'])


def test_run_ids_are_stable_and_w_and_b_safe():
  run_id = 'smoke-2026-12-05T04:11:23Z-9e0e44'
  cell = wandb_runs.run_ids(run_id, 'e77998e3461d0300')
  assert cell == wandb_runs.run_ids(run_id, 'e77998e3461d0300')
  assert cell.startswith('e77998e3461d0300-') and not set(cell) & set(wandb_runs.RESERVED)
  assert wandb_runs.run_ids(run_id).startswith('suite-')
  assert wandb_runs.run_ids('another run', 'e77998e3461d0300') != cell


@pytest.mark.parametrize('configured, exported, mode', [
    (None, None, 'offline'), (None, 'online', 'online'), (None, 'dryrun', 'offline'),
    (None, 'disabled', 'disabled'), ('offline', 'online', 'offline'),
    ('online', None, 'online')])
def test_mode_is_offline_unless_asked(configured, exported, mode):
  environ = {} if exported is None else {'WANDB_MODE': exported}
  assert wandb_runs.resolve_mode(configured, environ) == mode


# ---------------------------------------------------------------------------------------
# The interface: run_suite, the trackers group, a tracker that fails.

class _Failing:
  name = 'Broken'

  def __init__(self):
    self.calls = []

  def start(self, out_dir, run_info):
    self.calls.append('start')

  def write_cell(self, record):
    self.calls.append('write_cell')
    raise ConnectionError('no route to host\nsecond line')

  def finish(self, out_dir):
    self.calls.append('finish')

  def close(self):
    self.calls.append('close')


def test_a_failing_tracker_is_one_warning_and_is_dropped(tmp_path):
  warnings, failing, good = [], _Failing(), tensorboard_events.TensorBoard()
  group = trackers.Trackers([failing, good], warn=warnings.append)
  group._each('start', tmp_path, {'run_id': 'r', 'suite': 's'})
  record = _committed()
  group.write_cell(record)
  group.write_cell(record)
  group.finish(tmp_path)
  group.close()
  assert failing.calls == ['start', 'write_cell', 'close']
  assert warnings == ['Broken tracker failed (write_cell: ConnectionError: no route to host '
                      'second line); it writes nothing more in this run; results.jsonl is '
                      'unaffected']
  assert (tmp_path / 'tensorboard' / tensorboard_events.cell_name(record)).is_dir()


def _fake_cells(monkeypatch, statuses=('ok', 'diverged')):
  """Cells of two committed records, run by returning those records (no training), as
  this code would record them (its code_version: --reuse takes them)."""
  committed = records_lib.load_records(COMMITTED / 'results.jsonl')[:len(statuses)]
  cells = [records_lib.cell_of(r) for r in committed]
  version = provenance.code_version([])

  def run_cell(cell, on_step=None, *, suite, run_id, env, execution, checkpoints):
    (record,) = [dict(r) for r in committed if records_lib.cell_of(r).digest == cell.digest]
    record.update(run_id=run_id, suite=suite, cell_id=cell.digest, config=dict(record['config']),
                  status=statuses[cells.index(cell)], ran_on={},
                  env=dict(record['env'], code_version=version, plugins=[]))
    return record

  monkeypatch.setattr(suite, '_run_cell_in_worker', run_cell)
  return cells


QUIET = dict(log=lambda text: None)


def test_run_suite_feeds_the_trackers_and_survives_a_failing_one(tmp_path, monkeypatch):
  """W&B failing at every wandb.init: one warning, every record kept, the run completes,
  TensorBoard (asked for by its older flag) still written; the plan keeps `log`."""
  cells = _fake_cells(monkeypatch)
  warned = []
  monkeypatch.setattr(trackers.logging, 'warning', lambda fmt, text: warned.append(text))

  def no_init(**kwargs):
    raise wandb.errors.CommError('cannot reach the server')

  monkeypatch.setattr(wandb, 'init', no_init)
  done = suite.run_suite(cells, tmp_path, suite='t', env={}, progress=Progress(2, **QUIET),
                         log={'wandb': True}, tensorboard=True)
  assert [r['status'] for r in done] == ['ok', 'diverged']
  assert len(records_lib.load_records(tmp_path / 'results.jsonl')) == 2
  assert warned == ['W&B tracker failed (write_cell: CommError: cannot reach the server); it '
                    'writes nothing more in this run; results.jsonl is unaffected']
  assert len(list((tmp_path / 'tensorboard').iterdir())) == 2
  assert (tmp_path / 'report.html').is_file()
  plan = suite.read_plan(tmp_path)
  assert plan['dispatch']['log'] == trackers.Settings(tensorboard=True, wandb=True).to_dict()
  assert 'tensorboard' not in plan['dispatch']


def test_resume_reads_a_plan_from_before_log_and_writes_both_trackers(tmp_path, monkeypatch):
  """A plan written before `log` says dispatch['tensorboard']; resumed with it (as
  flows/run.py passes a plan's dispatch), the run writes TensorBoard files; with `log`, W&B
  runs for the cells recorded since, under the run's own run_id."""
  cells = _fake_cells(monkeypatch)
  suite.run_suite(cells[:1], tmp_path, suite='t', env={}, run_id='t-old',
                  progress=Progress(1, **QUIET))
  suite.write_plan(tmp_path, cells, suite='t', run_id='t-old', workers=1,
                   execution=suite.DEFAULT_EXECUTION,
                   dispatch={'executor': 'local', 'tensorboard': True})
  plan = suite.read_plan(tmp_path)
  suite.run_suite(plan['cells'], tmp_path, suite='t', env={}, run_id=plan['run_id'],
                  resume=True, progress=Progress(1, **QUIET), **plan['dispatch'])
  assert [p.name for p in (tmp_path / 'tensorboard').iterdir()] == [
      tensorboard_events.cell_name(records_lib.load_records(tmp_path / 'results.jsonl')[1])]
  suite.run_suite(plan['cells'], tmp_path, suite='t', env={}, run_id=plan['run_id'],
                  resume=True, progress=Progress(0, **QUIET),
                  log={'wandb': True, 'tensorboard': True})
  runs = _offline_runs(tmp_path)
  assert set(runs) == {wandb_runs.run_ids('t-old')}  # nothing left to run: the suite run
  assert runs[wandb_runs.run_ids('t-old')]['summary']['status/diverged'] == 1


def test_reused_cells_reach_the_trackers_of_the_run_that_reuses_them(tmp_path, monkeypatch):
  """--reuse copies another run's records in: they are this run's cells, so its trackers
  get them too, in this run's group."""
  cells = _fake_cells(monkeypatch, statuses=('ok', 'ok'))
  first = suite.run_suite(cells, tmp_path / 'a', suite='t', env={},
                          progress=Progress(2, **QUIET))
  monkeypatch.setattr(suite, '_run_cell_in_worker', lambda *a, **k: 1 / 0)  # none runs
  suite.run_suite(cells, tmp_path / 'b', suite='t', env={}, run_id='t-b',
                  progress=Progress(0, **QUIET), reuse=[str(tmp_path / 'a')],
                  log={'wandb': True})
  runs = _offline_runs(tmp_path / 'b')
  assert set(runs) == {wandb_runs.run_ids('t-b', r['cell_id']) for r in first} | {
      wandb_runs.run_ids('t-b')}
  for record in first:
    run = runs[wandb_runs.run_ids('t-b', record['cell_id'])]
    assert run['run'].run_group == 't-b' and run['config']['run_id'] == record['run_id']
    assert run['config']['ran_on']['reused_from']['run_id'] == record['run_id']


# ---------------------------------------------------------------------------------------
# Asking for it on the command line: bad input is one line and exit code 2.

RUN = ['archbench', 'run', '--suite', 'smoke', '--archs', 'rnn', '--tasks', 'adding']


@pytest.mark.parametrize('override, env, says', [
    ('--config.log.wandb=True', {'missing': True}, "pip install 'archbench[wandb]'"),
    ('--config.log.wandb_mode=cloud', {}, "config.log.wandb_mode 'cloud'; valid: offline, "
                                          'online'),
    ('--config.log.wandb=True', {'WANDB_MODE': 'sometimes'}, "WANDB_MODE='sometimes'"),
    ('--config.log.wandb_mode=online', {}, None),  # W&B not asked for: nothing to check
    ('--config.log.wandb=True --config.log.wandb_mode=online', {},
     'config.log.wandb_mode=online needs W&B credentials'),
    ('--config.log.wandb=True --config.log.wandb_project=a/b', {},
     "config.log.wandb_project 'a/b'"),
    ('--config.log.wandb=yes', {}, 'bad value for config.log.wandb'),
])
def test_bad_tracker_settings_are_one_line_before_any_cell(override, env, says, tmp_path,
                                                           monkeypatch, capsys):
  if env.pop('missing', False):
    monkeypatch.setitem(sys.modules, 'wandb', None)  # `import wandb` raises ImportError
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  out = tmp_path / 'out'
  if says is None:
    from archbench.benchmarks import config as config_lib
    from archbench.benchmarks.flows import run as run_flow
    config = config_lib.load('smoke')
    config.log.wandb_mode = 'online'
    assert 'log' not in run_flow.plan_suite(config, ['rnn'], ['adding']).dispatch
    return
  code = cli.run([*RUN, *override.split(), '--out', str(out)])
  err = capsys.readouterr().err
  assert code == 2 and err.count('\n') == 1 and says in err, err
  assert 'Traceback' not in err and not out.exists()


def test_settings_refuse_what_a_plan_cannot_hold():
  with pytest.raises(UsageError, match='unknown tracker setting'):
    trackers.Settings.of({'wandb': True, 'comet': True})
  with pytest.raises(UsageError, match='log.wandb takes True or False'):
    trackers.Settings.of({'wandb': 'yes'})
  assert trackers.Settings.of(None, tensorboard=True) == trackers.Settings(tensorboard=True)


# ---------------------------------------------------------------------------------------
# End to end: the CLI trains a cell and writes its W&B run.

@pytest.mark.slow
def test_a_run_writes_offline_w_and_b_runs_end_to_end(tmp_path):
  env = {k: v for k, v in os.environ.items() if not k.startswith('WANDB_')}
  home = tmp_path / 'home'
  env.update(HOME=str(home), JAX_PLATFORMS='cpu', WANDB_BASE_URL='http://127.0.0.1:9',
             NETRC=str(home / 'no-netrc'))
  out = tmp_path / 'run'
  done = subprocess.run([sys.executable, '-m', 'archbench.benchmarks', 'run', '--suite',
                         'smoke', '--archs', 'lstm', '--tasks', 'adding',
                         '--config.log.wandb=True', '--out', str(out)],
                        capture_output=True, text=True, env=env, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'wandb:' not in done.stdout + done.stderr  # silent: the progress stays readable
  (record,) = records_lib.load_records(out / 'results.jsonl')
  runs = _offline_runs(out)
  cell, whole = (wandb_runs.run_ids(record['run_id'], record['cell_id']),
                 wandb_runs.run_ids(record['run_id']))
  assert set(runs) == {cell, whole}
  assert record['curves']['train/loss']
  _check_cell_run(runs[cell], record, 'smoke', record['run_id'])
  (artifact,) = runs[whole]['artifacts']
  files = {e.path: pathlib.Path(e.local_path) for e in artifact.manifest.contents}
  assert set(files) == set(wandb_runs.ARTIFACT_FILES)
  assert files['results.jsonl'].read_bytes() == (out / 'results.jsonl').read_bytes()
  plan = json.loads((out / 'run.json').read_text())
  assert plan['dispatch']['log']['wandb_mode'] == 'offline'
