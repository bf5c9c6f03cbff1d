"""The slurm executor (harness/slurm.py): the sbatch script a cell's job gets, its settings
refused in one line when bad, the job array, the job ids kept for --resume and the jobs
re-attached from them, dead jobs, with or without Slurm's accounting, all against a
stand-in Slurm (sbatch, srun, sacct, squeue and scancel as small scripts, so no cluster is
needed); then, slow, real runs through submitit's local mode: a suite end to end (a
plug-in's architecture too), a job killed mid-cell, a driver killed and resumed without
submitting twice, a job preempted or timed out and requeued from its checkpoint, a driver
interrupted.

Skipped only where submitit is not installed (`pip install -e '.[slurm]'`; the `test`
extra includes it)."""
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from archbench.benchmarks import cli
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.core import Cell, Execution, TrainConfig, UsageError
from archbench.benchmarks.harness import executors, slurm, suite
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records

pytestmark = pytest.mark.skipif(importlib.util.find_spec('submitit') is None,
                                reason="submitit is not installed: pip install -e '.[slurm]'")

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
TRAIN = TrainConfig(steps=4, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                    eval_batch_size=16)
CELLS = [Cell('rnn', 'adding', 'tiny', seed=s, task_params={'length': 6, 'eval_size': 16},
              train=TRAIN, fast_compile=True) for s in range(2)]
SETTINGS = dict(partition='gpu', time=120, cpus_per_cell=8, gpus_per_cell=1, mem_gb=32,
                extra={'qos': 'high', 'constraint': 'a100'})


def _never_runs(cell, on_step=None):
  """The stand-in Slurm never runs a job: what the driver pickles for it."""
  raise AssertionError('a stand-in Slurm job ran')


# ---------------------------------------------------------------------------------------
# A stand-in Slurm: sbatch keeps each script and answers with the next job id, sacct
# reports the states the test writes (or, with $FAKE_NO_SACCT, that accounting is off, as
# on a cluster without its database), squeue lists those still pending or running, scancel
# notes what it cancels.

FAKE = {
    'sbatch': 'n=$(cat "$FAKE_SLURM/next"); echo $((n + 1)) > "$FAKE_SLURM/next"\n'
              'cp "$1" "$FAKE_SLURM/sbatch_$n.sh"\necho "Submitted batch job $n"\n',
    'srun': 'exit 0\n',
    'sacct': 'if [ -n "$FAKE_NO_SACCT" ]; then echo "Slurm accounting storage is disabled" >&2;'
             ' exit 1; fi\necho "JobID|State|NodeList"\ncat "$FAKE_SLURM/states" 2>/dev/null\n',
    'squeue': 'grep -E "[|](PENDING|RUNNING)[|]" "$FAKE_SLURM/states" | cut -d"|" -f1,2\n'
              'exit 0\n',
    'scancel': 'echo "$@" >> "$FAKE_SLURM/scancel"\n',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
  import submitit
  from submitit.slurm.slurm import SlurmInfoWatcher
  state = tmp_path / 'fake-slurm'
  (state / 'bin').mkdir(parents=True)
  for name, body in FAKE.items():
    path = state / 'bin' / name
    path.write_text('#!/bin/bash\n' + body)
    path.chmod(0o755)
  (state / 'next').write_text('1000')
  monkeypatch.setenv('FAKE_SLURM', str(state))
  monkeypatch.setenv('PATH', f'{state / "bin"}{os.pathsep}{os.environ["PATH"]}')
  monkeypatch.setattr(submitit.SlurmJob, 'watcher', SlurmInfoWatcher(delay_s=600))
  monkeypatch.setattr(submitit.SlurmJob, '_results_timeout_s', 0)  # no shared disk to wait on

  def states(**by_job):
    (state / 'states').write_text(''.join(f'{job}|{s}|node1\n' for job, s in by_job.items()))
  return state, states


def _result(out, job_id: str, record, outcome: str = 'success') -> None:
  """What a job writes when its call returns (submitit's result file); ('error', its
  traceback) when the call raised."""
  from submitit.core import utils
  utils.cloudpickle_dump((outcome, record), out / 'slurm' / f'{job_id}_0_result.pkl')


def test_the_sbatch_script_asks_for_what_the_settings_say(fake_slurm, tmp_path, monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_a=1 --xla_b=2')
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', 'host:1234')  # a launch's own: never sent
  options = slurm.SlurmOptions(**SETTINGS)
  executor = slurm.make_executor(options, tmp_path, executors.forwarded_environment())
  text = executor._make_submission_file_text('python -m x', 'uid')
  lines = set(text.splitlines())
  for line in ('#SBATCH --partition=gpu', '#SBATCH --time=120', '#SBATCH --cpus-per-task=8',
               '#SBATCH --gpus-per-node=1', '#SBATCH --mem=32GB', '#SBATCH --qos=high',
               '#SBATCH --constraint=a100', '#SBATCH --job-name=archbench',
               '#SBATCH --signal=USR2@90', "export XLA_FLAGS='--xla_a=1 --xla_b=2'"):
    assert line in lines, (line, text)
  assert 'JAX_COORDINATOR_ADDRESS' not in text
  # Defaults: no partition, memory or GPU asked for (the cluster's defaults), 60 minutes.
  text = slurm.make_executor(slurm.SlurmOptions(), tmp_path)._make_submission_file_text('x', 'u')
  assert '#SBATCH --time=60' in text and '#SBATCH --cpus-per-task=1' in text
  assert not {'--partition', '--mem', '--gpus'} & {w.split('=')[0] for w in text.split()}
  # Fractions of a minute are rounded up for Slurm; a short limit signals sooner than 90 s.
  short = slurm.SlurmOptions(time=2.5)
  text = slurm.make_executor(short, tmp_path)._make_submission_file_text('x', 'u')
  assert '#SBATCH --time=3' in text and '#SBATCH --signal=USR2@37' in text
  assert slurm.mem_text(1.5) == '1536MB'


def test_cells_go_as_one_job_array_and_a_dead_job_is_an_error_record(fake_slurm, tmp_path):
  """Two cells, one sbatch (an array of two); the ids go to jobs.json; a job that ends
  without a result (sacct: FAILED) is an exception outcome that says which job and where
  its log is, and so is one whose call raised (a plug-in that would not load there)."""
  state, states = fake_slurm
  states(**{'1000_0': 'FAILED', '1000_1': 'RUNNING'})
  options = slurm.SlurmOptions(**SETTINGS)
  outcomes = slurm.run_jobs(list(enumerate(CELLS)), _never_runs, options, out_dir=tmp_path,
                            poll_s=0.05)
  i, cell, outcome = next(outcomes)
  assert (i, cell) == (0, CELLS[0]) and isinstance(outcome, slurm.JobFailed)
  assert 'slurm job 1000_0' in str(outcome) and 'FAILED' in str(outcome)
  assert str(tmp_path / 'slurm' / '1000_0_0_log.err') in str(outcome)
  script = (state / 'sbatch_1000.sh').read_text()
  assert '#SBATCH --array=0-1%2' in script and '#SBATCH --partition=gpu' in script
  assert not (state / 'sbatch_1001.sh').exists()  # one submission for both
  ledger = json.loads((tmp_path / 'slurm' / slurm.JOBS_FILE).read_text())
  assert {c.digest: ledger[c.digest]['job_id'] for c in CELLS} == {
      CELLS[0].digest: '1000_0', CELLS[1].digest: '1000_1'}
  _result(tmp_path, '1000_1', 'Traceback (most recent call last):\n  ...\n'
          "ModuleNotFoundError: No module named 'my_plugin'\n", outcome='error')
  [(i, cell, outcome)] = list(outcomes)
  assert (i, cell) == (1, CELLS[1]) and isinstance(outcome, slurm.JobFailed)
  assert "slurm job 1000_1 of rnn/adding" in str(outcome)
  assert "it raised ModuleNotFoundError: No module named 'my_plugin'" in str(outcome)
  assert not (state / 'scancel').exists()


@pytest.mark.parametrize('asked', ['squeue', 'sacct'])
def test_resume_reattaches_to_live_jobs_and_resubmits_the_others(asked, fake_slurm, tmp_path):
  """jobs.json from a killed driver: the job still running is waited for, not submitted
  again; the cancelled one is cancelled for good measure and its cell submitted anew.
  Slurm is asked with squeue, or with sacct where squeue does not answer."""
  state, states = fake_slurm
  if asked == 'sacct':
    (state / 'bin' / 'squeue').write_text('#!/bin/bash\nexit 1\n')
  folder = str(tmp_path / 'slurm')
  (tmp_path / 'slurm').mkdir()
  (tmp_path / 'slurm' / slurm.JOBS_FILE).write_text(json.dumps({
      CELLS[0].digest: {'job_id': '900_0', 'folder': folder, 'local': False, 'slot': None},
      CELLS[1].digest: {'job_id': '900_1', 'folder': folder, 'local': False, 'slot': None}}))
  states(**{'900_0': 'RUNNING', '900_1': 'CANCELLED', '1000': 'PENDING'})
  outcomes = slurm.run_jobs(list(enumerate(CELLS)), _never_runs, slurm.SlurmOptions(),
                            out_dir=tmp_path, poll_s=0.05)
  _result(tmp_path, '900_0', {'cell_id': CELLS[0].digest})
  assert next(outcomes) == (0, CELLS[0], {'cell_id': CELLS[0].digest})
  assert (state / 'scancel').read_text().split() == ['900_1']
  assert (state / 'sbatch_1000.sh').is_file() and '--array' not in (
      state / 'sbatch_1000.sh').read_text()  # one cell: one plain job
  ledger = json.loads((tmp_path / 'slurm' / slurm.JOBS_FILE).read_text())
  assert [ledger[c.digest]['job_id'] for c in CELLS] == ['900_0', '1000']
  _result(tmp_path, '1000', {'cell_id': CELLS[1].digest})
  assert list(outcomes) == [(1, CELLS[1], {'cell_id': CELLS[1].digest})]


def test_without_accounting_a_job_that_left_the_queue_has_ended(fake_slurm, tmp_path,
                                                                 monkeypatch):
  """No sacct (no accounting database): a job that squeue stops listing, twice in a row,
  without a result, has died; its cell's outcome says it left the queue."""
  state, states = fake_slurm
  monkeypatch.setenv('FAKE_NO_SACCT', '1')
  states(**{'1000_0': 'RUNNING', '1000_1': 'RUNNING'})
  outcomes = slurm.run_jobs(list(enumerate(CELLS)), _never_runs, slurm.SlurmOptions(),
                            out_dir=tmp_path, poll_s=0.02, queue_check_s=0.1)
  started = time.monotonic()
  states(**{'1000_1': 'RUNNING'})  # 1000_0 killed: out of the queue, no result
  i, cell, outcome = next(outcomes)
  assert i == 0 and isinstance(outcome, slurm.JobFailed), outcome
  assert 'slurm job 1000_0' in str(outcome) and 'left the queue' in str(outcome)
  assert time.monotonic() - started >= 0.2  # two answers without it, not one
  _result(tmp_path, '1000_1', {'cell_id': CELLS[1].digest})
  assert list(outcomes) == [(1, CELLS[1], {'cell_id': CELLS[1].digest})]


def test_a_driver_stopped_early_cancels_its_jobs(fake_slurm, tmp_path):
  """Interrupted (run_suite closes the outcomes), the driver leaves no job running."""
  state, states = fake_slurm
  states(**{'1000_0': 'FAILED', '1000_1': 'RUNNING'})
  outcomes = slurm.run_jobs(list(enumerate(CELLS)), _never_runs, slurm.SlurmOptions(),
                            out_dir=tmp_path, poll_s=0.05)
  assert next(outcomes)[0] == 0
  outcomes.close()
  assert (state / 'scancel').read_text().split() == ['1000_1']


def test_a_job_out_of_time_records_timeout_and_its_log_says_where_it_started(
    tmp_path, monkeypatch, capsys):
  """In a job (submitit's local environment): the log line of each start, from the
  latest whole checkpoint; the job id in the record; and submitit giving up after the
  last time-out (it raises in the middle of training, which run_cell records as an
  error) recorded as the cell's `timeout`."""
  monkeypatch.setenv('SUBMITIT_EXECUTOR', 'local')
  monkeypatch.setenv('SUBMITIT_LOCAL_JOB_ID', '4242')
  for name in ('100', '200', '300.orbax-checkpoint-tmp-7'):  # the last one unfinished
    (tmp_path / name).mkdir()
  error = f'{slurm.TIMED_OUT}. (at selectors.py:468)'
  job = slurm.CellJob(lambda cell: {'status': 'error', 'error': error, 'ran_on': {}}, [],
                      CELLS[0], tmp_path)
  record = job()
  assert capsys.readouterr().err.strip() == (
      f'archbench: job 4242 runs {CELLS[0].name} (cell {CELLS[0].digest}), from its '
      'checkpoint at step 200')
  assert record['status'] == 'timeout' and record['ran_on'] == {'job_id': '4242'}
  assert 'time limit 4 times' in record['error'] and '--config.slurm.time' in record['error']
  requeued = job.checkpoint()  # submitit's hook: the same call again
  assert requeued.function is job and not requeued.args
  ok = slurm.CellJob(lambda cell: {'status': 'ok', 'error': None}, [], CELLS[0], None)()
  assert ok == {'status': 'ok', 'error': None, 'ran_on': {'job_id': '4242'}}
  assert capsys.readouterr().err.strip().endswith('from step 0')


# ---------------------------------------------------------------------------------------
# Settings: refused in one line, naming what is wrong and what is valid.

@pytest.mark.parametrize('settings, words', [
    ({'partion': 'gpu'}, ['slurm.partion', 'valid: partition, time, cpus_per_cell']),
    ({'time': -5}, ['slurm.time', '-5', 'positive number of minutes']),
    ({'time': 'long'}, ['slurm.time', 'positive number of minutes']),
    ({'gpus_per_cell': 0.5}, ['slurm.gpus_per_cell', '0.5', 'whole number >= 0']),
    ({'cpus_per_cell': 0}, ['slurm.cpus_per_cell', 'whole number >= 1']),
    ({'mem_gb': 0}, ['slurm.mem_gb', 'positive number of GB']),
    ({'partition': ''}, ['slurm.partition']),
    ({'local': 'yes'}, ['slurm.local', 'True or False']),
    ({'extra': {'output': '/tmp/x'}}, ['slurm.extra', 'output', 'submitit sets those']),
    ({'extra': {'--qos': 'high'}}, ['slurm.extra', '--qos', 'no leading --']),
    ({'extra': {'qos': None}}, ['slurm.extra.qos', 'a string or a number']),
    ({'extra': 'qos=high'}, ['slurm.extra', "{'qos': 'high'}"]),
])
def test_bad_settings_are_refused_in_one_line(settings, words):
  with pytest.raises(UsageError) as caught:
    slurm.SlurmOptions.from_settings(settings)
  message = str(caught.value)
  assert '\n' not in message and all(w in message for w in words), message


def test_settings_from_the_suite_config_reach_the_plan():
  config = config_lib.load('smoke')
  assert 'slurm' not in config_lib.executor(config)  # other executors' plans stay as they were
  config.executor = 'slurm'
  config.slurm.partition, config.slurm.gpus_per_cell = 'gpu', 1
  config.slurm.extra = {'qos': 'high'}
  dispatch = config_lib.executor(config)
  assert dispatch['slurm'] == {**slurm.SlurmOptions().to_dict(), 'partition': 'gpu',
                               'gpus_per_cell': 1, 'extra': {'qos': 'high'}}
  json.dumps(dispatch)  # run.json holds it
  assert slurm.SlurmOptions.from_settings(dispatch['slurm']) == slurm.SlurmOptions(
      partition='gpu', gpus_per_cell=1, extra={'qos': 'high'})
  config.slurm.time = 0.0
  with pytest.raises(UsageError, match=r'config\.slurm\.time'):
    config_lib.executor(config)


@pytest.mark.parametrize('argv, words', [
    (['--config.slurm.partion=gpu'], ['config.slurm.partion', 'partition', 'gpus_per_cell']),
    (['--config.executor=slurm', '--config.slurm.gpus_per_cell=one'],
     ['config.slurm.gpus_per_cell', "'one'", 'int']),
    (['--config.slurm.extra.qos=high'], ['config.slurm.extra', "--config.slurm.extra=\"{'qos'"]),
    (['--config.executor=slurm', '--config.slurm.time=-1'], ['slurm.time', '-1', 'minutes']),
    (['--config.executor=slurm'], ['no Slurm here', 'sbatch', '--config.slurm.local=True']),
])
def test_bad_slurm_flags_exit_2_in_one_line(argv, words, tmp_path, capsys, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path))  # no sbatch
  code = cli.run(['archbench', 'run', '--suite', 'smoke', '--archs', 'rnn', '--tasks', 'adding',
                  '--out', str(tmp_path / 'out'), *argv])
  err = capsys.readouterr().err
  assert code == 2 and len(err.strip().splitlines()) == 1, err
  assert all(w in err for w in words), err
  assert not (tmp_path / 'out').exists()  # refused before the run began


def test_without_submitit_the_error_says_how_to_install_it(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'submitit' else real(name, *a))
  with pytest.raises(UsageError, match=r"pip install 'archbench\[slurm\]'"):
    executors.Executor.resolve('slurm', 1)


def test_jobs_checkpoint_at_least_every_quarter_of_their_time():
  assert slurm.SlurmOptions(time=10).execution(Execution()).checkpoint_every_s == 150
  assert slurm.SlurmOptions(time=60).execution(Execution()) == Execution()  # 300 s < 15 min
  off = Execution(checkpoint_every_s=None, checkpoint_every_steps=100)
  assert slurm.SlurmOptions(time=10).execution(off) == off


# ---------------------------------------------------------------------------------------
# Real runs through submitit's local mode (a process per job on this machine).

def _archbench(*args, **kwargs):
  return subprocess.Popen([sys.executable, '-m', 'archbench.benchmarks', 'run', *args],
                          cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, **kwargs)


def _records(out):
  return [json.loads(line) for line in (out / 'results.jsonl').read_text().splitlines()]


def _wait_for(predicate, timeout_s, what):
  deadline = time.monotonic() + timeout_s
  while not predicate():
    assert time.monotonic() < deadline, f'no {what} after {timeout_s} s'
    time.sleep(0.2)


SMOKE = ['--suite', 'smoke', '--archs', 'lstm,transformer', '--tasks', 'adding',
         '--config.executor=slurm', '--config.slurm.local=True']


@pytest.mark.slow
def test_smoke_through_local_slurm_jobs(tmp_path):
  """Every cell ok, recorded by the driver, run by its job; the plug-in's architecture
  too (each job loads the driver's plug-ins before its cell)."""
  proc = _archbench(*SMOKE, '--out', str(tmp_path))
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  records = _records(tmp_path)
  assert sorted(r['arch'] for r in records) == ['lstm', 'transformer']
  plugged = tmp_path / 'plugin'
  proc = _archbench('--suite', 'smoke', '--archs', 'mingru', '--tasks', 'adding',
                    '--plugin', 'examples/mingru.py', '--config.executor=slurm',
                    '--config.slurm.local=True', '--out', str(plugged))
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  [plugin_record] = _records(plugged)
  assert plugin_record['status'] == 'ok' and plugin_record['ran_on']['executor'] == 'slurm'
  ledger = json.loads((tmp_path / 'slurm' / slurm.JOBS_FILE).read_text())
  for r in records:
    assert r['status'] == 'ok' and r['ran_on']['executor'] == 'slurm', r['error']
    assert r['ran_on']['job_id'] == ledger[r['cell_id']]['job_id']
    assert r['ran_on']['pid'] != proc.pid
  plan = suite.read_plan(tmp_path)
  assert plan['dispatch']['executor'] == 'slurm' and plan['dispatch']['slurm']['local']


@pytest.mark.slow
def test_a_killed_driver_resumes_without_submitting_twice(tmp_path):
  """The driver killed (SIGKILL) once both jobs are submitted: the jobs run on; `--resume`
  re-attaches to them (the same job ids, no new submission) and records every cell once."""
  proc = _archbench(*SMOKE, '--out', str(tmp_path))
  ledger_path = tmp_path / 'slurm' / slurm.JOBS_FILE
  _wait_for(lambda: ledger_path.is_file() and len(json.loads(ledger_path.read_text())) == 2,
            300, 'two submitted jobs')
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  submitted = json.loads(ledger_path.read_text())
  resumed = _archbench('--resume', str(tmp_path))
  _, err = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, err[-3000:]
  records = _records(tmp_path)
  assert sorted(r['arch'] for r in records) == ['lstm', 'transformer']  # each once
  assert json.loads(ledger_path.read_text()) == submitted
  for r in records:
    assert r['status'] == 'ok', r['error']
    assert r['ran_on']['job_id'] == submitted[r['cell_id']]['job_id']
  assert len(list((tmp_path / 'slurm').glob('*_submitted.pkl'))) == 2


def _die(cell, on_step=None, **_):
  """A job killed in the middle of its cell (out of memory, a crash in XLA)."""
  print('Fatal Python error: Segmentation fault', file=sys.stderr, flush=True)
  os._exit(3)


@pytest.mark.slow
def test_a_job_that_dies_is_an_error_record_and_the_run_goes_on(monkeypatch, tmp_path):
  import cloudpickle  # submitit pickles with it: _die goes by value, tests/ is not importable
  cloudpickle.register_pickle_by_value(sys.modules[__name__])
  monkeypatch.setattr(suite, '_run_cell_in_worker', _die)
  done = suite.run_suite(CELLS, tmp_path, suite='t', executor='slurm', workers=2,
                         slurm={'local': True}, progress=Progress(2, log=lambda *_: None))
  assert [r['status'] for r in done] == ['error', 'error']
  for r in done:
    assert r['ran_on'] == {'executor': 'slurm'}
    assert 'local job' in r['error'] and 'without a result' in r['error'], r['error']
    assert 'Segmentation fault' in r['error'] and 'its log:' in r['error'], r['error']
  assert len(records.load_records(tmp_path / 'results.jsonl')) == 2


LONG_CELL = ['--suite', 'smoke', '--archs', 'lstm', '--tasks', 'adding', '--seed', '0',
             '--config.executor=slurm', '--config.slurm.local=True',
             '--config.train.steps=2000', '--config.task.length=128',
             '--config.train.steps_per_dispatch=10',
             '--config.execution.checkpoint_every_steps=100',
             '--config.execution.checkpoint_min_s=0']


@pytest.mark.slow
def test_a_preempted_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
  """Preemption as submitit sees it (USR2 to the job's process, well before its time
  limit) once the cell has checkpointed: the job requeues itself and the cell continues
  from its checkpoint, in the same job."""
  proc = _archbench(*LONG_CELL, '--out', str(tmp_path))
  _wait_for(lambda: any(p.name.isdigit() for p in (tmp_path / 'checkpoints').glob('*/*')),
            300, 'checkpoint')
  job_id = next(iter(json.loads((tmp_path / 'slurm' / slurm.JOBS_FILE).read_text()).values()))[
      'job_id']
  children = pathlib.Path(f'/proc/{job_id}/task/{job_id}/children').read_text().split()
  os.kill(int(children[0]), signal.SIGUSR2)  # the job's own process, under its controller
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  [record] = _records(tmp_path)
  assert record['status'] == 'ok', record['error']
  assert record['perf']['resumed_at_step'] >= 100 and record['metrics']['train/steps'] == 2000
  assert record['ran_on']['job_id'] == job_id
  log = (tmp_path / 'slurm' / f'{job_id}_0_log.err').read_text()
  assert 'this job is preempted' in log and f'Requeued job {job_id}' in log


def _job_starts(out) -> tuple[str, list[str]]:
  """The job's id and the lines its starts wrote to its log (slurm.CellJob)."""
  ledger = out / 'slurm' / slurm.JOBS_FILE
  if not ledger.is_file():
    return '', []
  job_id = next(iter(json.loads(ledger.read_text()).values()))['job_id']
  log = out / 'slurm' / f'{job_id}_0_log.err'
  text = log.read_text() if log.is_file() else ''
  return job_id, [line for line in text.splitlines() if line.startswith('archbench: job')]


@pytest.mark.slow
def test_a_timed_out_job_is_requeued_from_its_checkpoint_and_an_interrupt_cancels_it(
    tmp_path):
  """A 30 s time limit on a cell that needs minutes: told 7 s before the limit, the job
  requeues (one time-out counted) and its next start takes the cell up at its checkpoint.
  Then the driver is interrupted (Ctrl-C): it stops, and cancels the job it leaves
  behind. (What a job that runs out of requeues records: test_a_job_out_of_time_...)"""
  proc = _archbench(*LONG_CELL, '--config.train.steps=30000', '--config.slurm.time=0.5',
                    '--out', str(tmp_path))
  _wait_for(lambda: len(_job_starts(tmp_path)[1]) == 2, 300, 'second start of the job')
  job_id, (first, second) = _job_starts(tmp_path)
  log = (tmp_path / 'slurm' / f'{job_id}_0_log.err').read_text()
  assert 'this job is timed-out' in log and '(2 remaining timeouts)' in log, log[-3000:]
  assert first.endswith('from step 0'), first
  step = int(second.rpartition('from its checkpoint at step ')[2])
  assert 100 <= step < 30000, second
  proc.send_signal(signal.SIGINT)
  proc.wait(timeout=120)
  _wait_for(lambda: not slurm._controller_alive(int(job_id)), 60, 'cancelled job')
  assert not (tmp_path / 'results.jsonl').exists() or not _records(tmp_path)
