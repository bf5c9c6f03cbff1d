"""Nothing lost: a killed run resumes (cells recorded once, the cell in flight from its
checkpoint, bit for bit), cells past their time limit are recorded as `timeout`, runs are
compared and reproduced from their records, and records carry their provenance."""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

from archbench.benchmarks import cli
from archbench.benchmarks.core import Cell, Execution, TrainConfig
from archbench.benchmarks.harness import provenance, runner, suite
from archbench.benchmarks.progress import Progress

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
QUIET = dict(log=lambda *_: None)
TRAIN = TrainConfig(steps=8, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                    eval_batch_size=16)
ADDING = {'length': 6, 'eval_size': 16}


class Killed(Exception):
  """Stands for a kill in the middle of training (raised from the progress callback)."""


def test_resumed_cell_ends_bit_identical(tmp_path):
  cell = Cell('lstm', 'adding', 'tiny', task_params=ADDING, train=TRAIN, fast_compile=True)
  whole = {}
  runner.measure_cell(cell, whole)

  execution = Execution(checkpoint_every_steps=2, checkpoint_every_s=None, checkpoint_min_s=0)
  directory = tmp_path / 'checkpoints'

  def kill_at_step_6(step, steps, loss):
    if step == 6:  # checkpoints were saved at steps 2 and 4; 6 is not saved yet
      raise Killed

  with pytest.raises(Killed):
    runner.measure_cell(cell, {}, kill_at_step_6, execution, directory)
  assert directory.is_dir()
  resumed = {}
  runner.measure_cell(cell, resumed, None, execution, directory)
  assert resumed['perf']['resumed_at_step'] == 4
  assert resumed['metrics']['train/steps'] == whole['metrics']['train/steps'] == 8
  for key, value in whole['metrics'].items():
    assert resumed['metrics'][key] == value, key  # exactly, not approximately
  # The training curve: one point per dispatch of 2 steps; the resumed cell holds the
  # dispatches it ran itself, after the checkpoint at step 4, with the same losses.
  assert [step for step, _ in whole['curves']['train/loss']] == [2, 4, 6, 8]
  assert resumed['curves']['train/loss'] == whole['curves']['train/loss'][2:]
  assert whole['curves']['train/loss'][-1][1] == whole['metrics']['train/loss']


def test_short_cells_do_not_checkpoint(tmp_path):
  """A cell expected to train for less than checkpoint_min_s is cheaper to re-run."""
  cell = Cell('rnn', 'adding', 'tiny', task_params=ADDING, train=TRAIN, fast_compile=True)
  execution = Execution(checkpoint_every_steps=2, checkpoint_min_s=3600)
  out = {}
  runner.measure_cell(cell, out, None, execution, tmp_path / 'checkpoints')
  assert not (tmp_path / 'checkpoints').exists() and out['metrics']['train/steps'] == 8


def test_time_limit_records_timeout_and_the_run_goes_on(tmp_path):
  cells = [Cell('rnn', 'adding', 'tiny', task_params=ADDING, train=TRAIN, fast_compile=True),
           Cell('gru', 'adding', 'tiny', task_params=ADDING, train=TRAIN, fast_compile=True)]
  done = suite.run_suite(cells, tmp_path, suite='t', execution=Execution(time_limit_s=1e-3),
                          progress=Progress(2, **QUIET))
  assert [r['status'] for r in done] == ['timeout', 'timeout']
  for r in done:  # what it measured before the limit is kept
    assert 'time limit' in r['error'] and r['metrics']['train/steps'] == 2
    assert r['perf']['params'] > 0 and r['perf']['compile_s'] > 0
  assert 'timeout' in (tmp_path / 'summary.md').read_text()


def test_resume_skips_recorded_cells_and_drops_a_torn_line(tmp_path):
  cells = [Cell('rnn', 'adding', 'tiny', seed=s, task_params=ADDING, train=TRAIN,
                fast_compile=True) for s in range(3)]
  first = suite.run_suite(cells[:2], tmp_path, suite='t', progress=Progress(2, **QUIET))
  suite.write_plan(tmp_path, cells, suite='t', run_id=first[0]['run_id'], workers=1,
                    execution=Execution())
  path = tmp_path / 'results.jsonl'
  lines = path.read_text().splitlines()
  path.write_text(lines[0] + '\n' + lines[1][:40])  # killed while writing the second
  plan = suite.read_plan(tmp_path)
  suite.run_suite(plan['cells'], tmp_path, suite='t', run_id=plan['run_id'], resume=True,
                   progress=Progress(2, **QUIET))
  final = [json.loads(line) for line in path.read_text().splitlines()]
  assert sorted(r['seed'] for r in final) == [0, 1, 2]  # seed 1 re-run, 0 kept
  assert final[0] == json.loads(lines[0])
  assert {r['run_id'] for r in final} == {first[0]['run_id']}


def test_resume_refuses_other_code_and_other_flags(tmp_path, capsys):
  suite.write_plan(tmp_path, [], suite='t', run_id='r', workers=1, execution=Execution())
  plan = json.loads((tmp_path / suite.PLAN_FILE).read_text())
  (tmp_path / suite.PLAN_FILE).write_text(json.dumps({**plan, 'code_version': 'other'}))
  assert cli.run(['archbench', 'run', '--resume', str(tmp_path)]) == 2
  assert 'other code' in capsys.readouterr().err
  assert cli.run(['archbench', 'run', '--resume', str(tmp_path), '--archs', 'rnn']) == 2
  assert 'drop --archs' in capsys.readouterr().err
  assert cli.run(['archbench', 'run', '--resume', str(tmp_path / 'nope')]) == 2


@pytest.mark.slow
def test_random_kills_then_resume(tmp_path):
  """A real `archbench run` killed with SIGKILL at random moments (checkpoints on, so
  kills land in saves too), then resumed until done: every cell exactly once, all ok,
  every line valid JSON."""
  rng = random.Random(20261201)
  argv = [sys.executable, '-m', 'archbench.benchmarks', 'run', '--suite', 'smoke', '--archs',
          'rnn,gru', '--tasks', 'adding', '--workers', '1',
          '--config.execution.checkpoint_every_steps=5',
          '--config.execution.checkpoint_min_s=0']
  for trial in range(3):
    out = tmp_path / f'trial{trial}'
    proc = subprocess.Popen([*argv, '--out', str(out)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kills = 0
    for _ in range(3):  # up to three kills a trial, then it may finish
      try:
        code = proc.wait(timeout=rng.uniform(2, 9))
      except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        code = None
      if code is not None:
        break
      if not (out / suite.PLAN_FILE).exists():  # killed before it planned: start again
        proc = subprocess.Popen([*argv, '--out', str(out)], env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        continue
      proc = subprocess.Popen([sys.executable, '-m', 'archbench.benchmarks', 'run',
                               '--resume', str(out)], env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    else:
      code = proc.wait(timeout=300)
    assert code == 0, (trial, kills)
    lines = (out / 'results.jsonl').read_text().splitlines()
    final = [json.loads(line) for line in lines]  # every line parses
    assert sorted((r['arch'], r['task']) for r in final) == [('gru', 'adding'),
                                                             ('rnn', 'adding')], trial
    assert all(r['status'] == 'ok' for r in final)
    assert not list((out / 'checkpoints').glob('*/*')), 'finished cells leave no checkpoint'


# ---------------------------------------------------------------------------------------
# compare and reproduce on the command line.

def test_compare_a_run_with_itself_and_with_an_altered_copy(tmp_path, capsys):
  base = REPO / 'results' / 'quick-cpu'
  assert cli.run(['archbench', 'compare', str(base), str(base)]) == 0
  out = capsys.readouterr().out
  assert 'worse' not in out.split('No regressions')[0].split('|')[-1]
  altered = [json.loads(line) for line in (base / 'results.jsonl').read_text().splitlines()]
  for r in altered:
    if (r['arch'], r['task']) == ('transformer', 'copy'):
      r['metrics']['eval/accuracy'] -= 0.3
  (tmp_path / 'results.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in altered))
  assert cli.run(['archbench', 'compare', str(base), str(tmp_path), '--json']) == 1
  result = json.loads(capsys.readouterr().out)
  assert [(r['cell'].split('/')[0], r['metric']) for r in result['regressions']] == [
      ('transformer', 'eval/accuracy')]


@pytest.mark.slow
def test_reproduce_a_run_from_its_records(tmp_path, capsys):
  cells = [Cell('rnn', 'adding', 'tiny', task_params=ADDING, train=TRAIN, fast_compile=True),
           Cell('gru', 'copy', 'tiny', task_params={'length': 4, 'eval_size': 16},
                train=TRAIN, fast_compile=True)]
  suite.run_suite(cells, tmp_path / 'base', suite='t', progress=Progress(2, **QUIET))
  code = cli.run(['archbench', 'reproduce', str(tmp_path / 'base'), '--out',
                  str(tmp_path / 'again')])
  out = capsys.readouterr().out
  assert code == 0, out
  assert (tmp_path / 'again' / 'comparison.md').read_text() in out
  verdicts = [line.split('|')[-2].strip() for line in out.splitlines()
              if line.startswith('| rnn') or line.startswith('| gru')]
  assert verdicts and set(verdicts) == {'same'}, verdicts
  assert 'Step time' not in out  # judged only with --timing
  # The reproduction's report.html shows the verdicts (the comparison is written last).
  assert 'Reproduction: verdicts' in (tmp_path / 'again' / 'report.html').read_text()


def test_env_names_what_makes_machines_differ(capsys, monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_enable_fast_math=false')
  assert cli.run(['archbench', 'env', '--json']) == 0
  env = json.loads(capsys.readouterr().out)
  for key in ('cpu', 'cpu_features', 'device_kind', 'device_count', 'xla_flags',
              'matmul_precision', 'packages_digest', 'code_version', 'git_commit'):
    assert key in env, key
  assert env['xla_flags'] == '--xla_cpu_enable_fast_math=false'
  assert env['code_version'] == provenance.code_version() and len(env['packages_digest']) == 16
  assert cli.run(['archbench', 'env']) == 0
  assert 'cpu_features' in capsys.readouterr().out
