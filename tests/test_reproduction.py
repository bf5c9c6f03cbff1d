"""Reproductions of published results (benchmarks/results/reproduction.py, the files in
benchmarks/reproductions/ and `archbench reproduce NAME | --list`): verdicts on fabricated
records with known answers, every built-in reproduction's rows matching its own cells, and
one tiny reproduction end to end through the command line."""
import json
import pathlib
import re
import textwrap

import pytest

from archbench.benchmarks import cli
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.results import reproduction as rep


def _record(arch, task, seed, metrics, status='ok', **params):
  return {'run_id': 'r', 'suite': 's', 'arch': arch, 'task': task, 'size': 'tiny', 'seed': seed,
          'status': status, 'config': {'task': params}, 'metrics': metrics, 'perf': {}}


def _spec(rows, claims=(), size='full', rule='mean'):
  return rep.spec(title='t', paper='p', size=size, seeds_rule=rule, seeds_rule_source='s',
                  checkpoint='last', rows=rows, claims=list(claims), departures=['d'])


def _accuracies(arch, values, task='digits'):
  return [_record(arch, task, s, {'eval/accuracy': v}) for s, v in enumerate(values)]


# ---------------------------------------------------------------------------------------
# Verdicts at full size.

def test_paper_within_the_seeds_range_is_reproduced():
  rows = [rep.expect('lstm', 'digits', 'eval/accuracy', 0.90, 'Table 1')]
  judged = rep.judge(_spec(rows), _accuracies('lstm', [0.88, 0.91, 0.93]))
  (row,) = judged['rows']
  assert row['verdict'] == rep.REPRODUCED
  assert row['value'] == pytest.approx(0.9066666, abs=1e-6)  # the mean rule
  assert row['difference'] == pytest.approx(0.0066666, abs=1e-6)


def test_outside_the_range_within_tolerance_then_differs():
  records = _accuracies('lstm', [0.950, 0.952, 0.954])
  near = rep.judge(_spec([rep.expect('lstm', 'digits', 'eval/accuracy', 0.94, 'T')]), records)
  far = rep.judge(_spec([rep.expect('lstm', 'digits', 'eval/accuracy', 0.90, 'T')]), records)
  assert near['rows'][0]['verdict'] == rep.WITHIN        # |0.952 - 0.94| <= 0.02
  assert far['rows'][0]['verdict'] == rep.DIFFERS        # 0.052 > 0.02
  assert near['rows'][0]['tolerance'] == pytest.approx(0.02)


def test_tolerance_widens_to_three_sigma_of_the_seeds_and_scales_for_losses():
  tol, source = rep.tolerance('eval/accuracy', 0.5, [0.4, 0.5, 0.6])
  assert tol == pytest.approx(0.3) and '3σ of 3 seeds' in source
  tol, _ = rep.tolerance('eval/mse', 0.2, [0.2])
  assert tol == pytest.approx(0.02)  # 10% of the paper's value
  tol, _ = rep.tolerance('eval/mse', 5e-5, [1e-4])
  assert tol == pytest.approx(1e-3)  # never below 0.001 for losses


def test_a_max_over_seeds_is_not_reproduced_by_the_seeds_range():
  """With the paper's max rule, a paper number inside the seeds' range says nothing: the
  maxima must agree (and the spread of failed and solved seeds must not widen the
  tolerance)."""
  rows = [rep.expect('transformer', 'digits', 'eval/accuracy', 0.52, 'T')]
  records = _accuracies('transformer', [0.5, 0.6, 0.7, 0.95])
  (row,) = rep.judge(_spec(rows, rule='max'), records)['rows']
  assert row['value'] == 0.95 and row['verdict'] == rep.DIFFERS
  assert row['tolerance'] == pytest.approx(0.02)
  (row,) = rep.judge(_spec(rows, rule='mean'), records)['rows']
  assert row['verdict'] == rep.REPRODUCED  # a mean: 0.52 lies among the seeds


@pytest.mark.parametrize('rule,expected', [('max', 0.7), ('min', 0.1), ('median', 0.3),
                                           ('mean', 0.3666666)])
def test_seed_rules(rule, expected):
  rows = [rep.expect('gru', 'digits', 'eval/accuracy', 0.5, 'T')]
  judged = rep.judge(_spec(rows, rule=rule), _accuracies('gru', [0.1, 0.3, 0.7]))
  assert judged['rows'][0]['value'] == pytest.approx(expected, abs=1e-6)
  assert judged['rows'][0]['mean'] == pytest.approx(0.3666666, abs=1e-6)


def test_rows_match_task_parameters_and_report_failures_and_missing_cells():
  records = [_record('tcn', 'adding', 0, {'eval/mse': 1e-4}, length=200),
             _record('tcn', 'adding', 0, {'eval/mse': 0.17}, length=600),
             _record('tcn', 'adding', 1, {}, status='diverged', length=600)]
  rows = [rep.expect('tcn', 'adding', 'eval/mse', 5.8e-5, 'T', where={'length': 600}),
          rep.expect('gru', 'adding', 'eval/mse', 5.3e-5, 'T', where={'length': 600})]
  tcn, gru = rep.judge(_spec(rows), records)['rows']
  assert tcn['values'] == [0.17] and tcn['failed'] == ['diverged']
  assert tcn['verdict'] == rep.DIFFERS
  assert gru['verdict'] == rep.NOT_RUN


# ---------------------------------------------------------------------------------------
# Qualitative verdicts and claims.

def test_qualitative_rows_compare_outcomes_not_numbers():
  rows = [rep.expect('tcn', 'adding', 'eval/mse', 5.8e-5, 'T', solved_if=('<=', 0.01)),
          rep.expect('lstm', 'adding', 'eval/mse', 0.164, 'T', solved_if=('<=', 0.01)),
          rep.expect('gru', 'adding', 'eval/mse', None, 'none', solved_if=('<=', 0.01))]
  records = [_record('tcn', 'adding', 0, {'eval/mse': 0.004}),
             _record('lstm', 'adding', 0, {'eval/mse': 0.002}),
             _record('gru', 'adding', 0, {'eval/mse': 0.1})]
  tcn, lstm, gru = rep.judge(_spec(rows, size='cpu'), records)['rows']
  assert tcn['verdict'] == 'qualitative: reproduced'  # both solved, numbers apart
  assert lstm['verdict'] == 'qualitative: differs'    # paper fails, archbench solves
  assert gru['verdict'] == rep.ARCHBENCH_ONLY
  assert gru['outcome'] is False  # archbench's own outcome is still judged and shown


def test_baseline_relative_outcomes_use_each_sides_own_baseline():
  row = rep.expect('tcn', 'copy', 'eval/loss', 3.5e-5, 'T', solved_if=('<=', 0.1, 'baseline'),
                   paper_baseline=0.0204)
  solved = _record('tcn', 'copy', 0, {'eval/loss': 0.01, 'baseline/eval/loss': 0.17})
  stuck = _record('tcn', 'copy', 0, {'eval/loss': 0.03, 'baseline/eval/loss': 0.17})
  assert rep.judge(_spec([row], size='cpu'), [solved])['rows'][0]['outcome'] is True
  assert rep.judge(_spec([row], size='cpu'), [stuck])['rows'][0]['outcome'] is False


def test_claims_by_factor_margin_and_against_the_baseline():
  records = [_record('tcn', 'adding', 0, {'eval/mse': 0.001, 'baseline/eval/mse': 0.167}),
             _record('lstm', 'adding', 0, {'eval/mse': 0.02}),
             _record('rnn', 'adding', 0, {'eval/mse': 0.005}),
             *_accuracies('lstm', [0.9]), *_accuracies('transformer', [0.55])]
  claims = [rep.claim('x10', 'adding', 'eval/mse', 'tcn', ('lstm',), factor=10),
            rep.claim('x10 both', 'adding', 'eval/mse', 'tcn', ('lstm', 'rnn'), factor=10),
            rep.claim('margin', 'digits', 'eval/accuracy', 'lstm', ('transformer',), margin=0.3),
            rep.claim('too big', 'digits', 'eval/accuracy', 'lstm', ('transformer',),
                      margin=0.4),
            rep.claim('baseline', 'adding', 'eval/mse', 'tcn', ('baseline',), factor=100),
            rep.claim('absent', 'adding', 'eval/mse', 'gru', ('tcn',), factor=2),
            rep.claim('tie', 'digits', 'eval/accuracy', 'lstm', ('lstm',), factor=1.0)]
  verdicts = [c['verdict'] for c in rep.judge(_spec([], claims), records)['claims']]
  assert verdicts == ['qualitative: holds', 'qualitative: fails', 'qualitative: holds',
                      'qualitative: fails', 'qualitative: holds', rep.NOT_RUN,
                      'qualitative: fails']


def test_markdown_and_booktabs_tables(tmp_path):
  rows = [rep.expect('lstm', 'digits', 'eval/accuracy', 0.9, 'Table 1, p. 5')]
  judged = rep.write(tmp_path, _spec(rows), _accuracies('lstm', [0.89, 0.92]))
  text = (tmp_path / rep.FILE_MD).read_text()
  assert '| lstm | digits | eval/accuracy | as paper | 0.9 | 0.905 |' in text
  for heading in ('## Table', '## Verdicts', '## Tolerance', '## Departures from the paper',
                  '## Sources'):
    assert heading in text
  assert 'Table 1, p. 5' in text and '1 reproduced' in text
  tex = (tmp_path / rep.FILE_TEX).read_text()
  assert tex.count(r'\begin{tabular}') == tex.count(r'\end{tabular}') >= 1
  for rule in (r'\toprule', r'\midrule', r'\bottomrule'):
    assert tex.count(rule) == tex.count(r'\begin{tabular}')
  assert json.loads((tmp_path / rep.FILE_JSON).read_text())['rows'][0]['verdict'] == \
      judged['rows'][0]['verdict']


def test_the_spec_written_before_the_run_is_read_back_and_judged(tmp_path):
  """What `archbench reproduce NAME` writes before its cells run: a killed reproduction is
  judged later from it (saved), and write() keeps the run's wall time from an earlier write."""
  spec = rep.plain(_spec([rep.expect('lstm', 'digits', 'eval/accuracy', 0.9, 'T')]))
  rep.write_spec(tmp_path, spec)
  assert rep.saved(tmp_path) == spec
  assert [p.name for p in tmp_path.iterdir()] == [rep.FILE_JSON]
  rep.write(tmp_path, spec, _accuracies('lstm', [0.9]), wall_s=12.0)
  judged = rep.write(tmp_path, rep.saved(tmp_path), _accuracies('lstm', [0.9]))
  assert judged['wall_s'] == 12.0 and judged['rows'][0]['verdict'] == rep.REPRODUCED


# ---------------------------------------------------------------------------------------
# The built-in reproductions.

def test_every_reproduction_exists_at_both_sizes():
  names = config_lib.reproductions()
  for base in ('tcn-table1', 'chomsky', 'lra-listops'):
    assert names[base][1] == 'full' and names[f'{base}-cpu'][1] == 'cpu'


@pytest.mark.parametrize('name', list(config_lib.reproductions()))
def test_every_row_and_claim_names_cells_of_its_own_config(name):
  """A typo in a row (arch, task, parameters) would leave it `not run` forever."""
  config = config_lib.load_reproduction(name)
  spec = rep.plain(config.reproduction)
  cells = config_lib.cells(config)
  assert spec['size'] == ('cpu' if name.endswith('-cpu') else 'full')
  assert spec['departures'] and spec['rows']

  def matching(arch, task, where):
    return [c for c in cells if c.arch == arch and c.task == task
            and all(c.task_params.get(k) == v for k, v in where.items())]
  for row in spec['rows']:
    assert matching(row['arch'], row['task'], row['where']), row
    assert row['source']
  for c in spec['claims']:
    for arch in [c['better'], *c['than']]:
      assert arch == 'baseline' or matching(arch, c['task'], c['where']), c


def test_cpu_sizes_are_smaller_than_the_papers():
  for base in ('tcn-table1', 'chomsky', 'lra-listops'):
    full = config_lib.cells(config_lib.load_reproduction(base))
    cpu = config_lib.cells(config_lib.load_reproduction(f'{base}-cpu'))
    assert sum(c.train.steps for c in cpu) < sum(c.train.steps for c in full) / 4


# ---------------------------------------------------------------------------------------
# The command line.

TINY = '''
"""A tiny reproduction for the tests."""
from archbench.benchmarks.config import suite_config, task_plan
from archbench.benchmarks.results.reproduction import claim, expect, spec


def get_config(size='full'):
  config = suite_config(name='tiny', doc=__doc__, size='tiny', archs=('lstm', 'tcn'),
                        train=dict(steps=6, batch_size=8, steps_per_dispatch=3,
                                   eval_batch_size=50),
                        tasks={'adding': task_plan({'length': 12, 'eval_size': 50})})
  config.reproduction = spec(
      title='Tiny', paper='Nobody 2026', size=size, seeds_rule='max',
      seeds_rule_source='max', checkpoint='last',
      rows=[expect('lstm', 'adding', 'eval/mse', 0.1, 'Table 9', solved_if=('<=', 0.01)),
            expect('tcn', 'adding', 'eval/mse', None, 'none', solved_if=('<=', 0.01))],
      claims=[claim('tcn beats lstm', 'adding', 'eval/mse', 'tcn', ('lstm',), factor=1.0)],
      departures=['fewer steps'])
  return config
'''


@pytest.mark.slow
def test_reproduce_list_and_a_named_reproduction_end_to_end(tmp_path, monkeypatch, capsys):
  folder = tmp_path / 'reproductions'
  folder.mkdir()
  (folder / 'tiny_one.py').write_text(textwrap.dedent(TINY))
  monkeypatch.setattr(config_lib, 'REPRODUCTIONS_DIR', folder)
  assert cli.run(['archbench', 'reproduce', '--list']) == 0
  listing = capsys.readouterr().out
  assert re.search(r'\| tiny-one \| full \| Tiny \| 2 \|', listing)
  assert re.search(r'\| tiny-one-cpu \| cpu \| Tiny \| 2 \|', listing)

  out = tmp_path / 'run'
  assert cli.run(['archbench', 'reproduce', 'tiny-one-cpu', '--out', str(out),
                  '--compile_cache', 'off']) == 0
  printed = capsys.readouterr().out
  table = (out / rep.FILE_MD).read_text()
  assert table in printed
  assert re.search(r'\| lstm \| adding \| eval/mse \| as paper \| 0\.1 \| [0-9.e-]+ \|', table)
  assert 'archbench only (solved: archbench ' in table and 'fewer steps' in table
  assert 'Reproduction: verdicts against the paper' in (out / 'report.html').read_text()
  judged = json.loads((out / rep.FILE_JSON).read_text())
  assert judged['cells'] == 2 and judged['rows'][0]['seeds'] == [0]
  assert judged['wall_s'] > 0 and ' wall time on ' in table  # measured, and kept below
  # `archbench report` judges again from the records and the saved spec: same table.
  (out / rep.FILE_MD).unlink()
  assert cli.run(['archbench', 'report', str(out)]) == 0
  assert (out / rep.FILE_MD).read_text() == table
  # A directory that holds a run already is refused: its records would be judged together.
  assert cli.run(['archbench', 'reproduce', 'tiny-one-cpu', '--out', str(out)]) == 2
  assert 'already holds a run' in capsys.readouterr().err


def test_unknown_reproduction_is_one_line_and_exit_2(capsys):
  assert cli.run(['archbench', 'reproduce', 'no-such-paper']) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and 'tcn-table1-cpu' in err
  assert cli.run(['archbench', 'reproduce', '--list', 'extra']) == 2


def test_reproduction_files_are_found_from_the_package():
  assert config_lib.REPRODUCTIONS_DIR == pathlib.Path(config_lib.__file__).parent / \
      'reproductions'
