"""Several runs as one table (`archbench report DIR1 DIR2 … --out DIR`) and a run that reuses
another's cells (`archbench run --reuse DIR`): what may be merged, a cell counted once,
machines named where they differ, and only the new cells run."""
import copy
import json
import os
import pathlib
import subprocess
import sys

import pytest

from archbench.benchmarks import cli
from archbench.benchmarks.core import PROTOCOL
from archbench.benchmarks.results import merge
from archbench.benchmarks.results import records as records_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
QUICK = REPO / 'results' / 'quick-cpu'
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
PLUGIN = REPO / 'examples' / 'mingru.py'


def _write(path: pathlib.Path, found) -> pathlib.Path:
  path.mkdir(parents=True, exist_ok=True)
  (path / 'results.jsonl').write_text(''.join(records_lib.dumps(r) + '\n' for r in found))
  return path


def _quick(protocol=PROTOCOL):
  """The committed quick run's records, declaring `protocol` (None: as written before
  records carried one)."""
  found = records_lib.load_records(QUICK / 'results.jsonl')
  for record in found:
    record['env']['protocol'] = protocol
  return found


def _plugin_run(found, *, arch='mingru', code='c0ffee', protocol=PROTOCOL, cpu=None):
  """A run of a plug-in architecture, made from the LSTM's records of `found`: another
  architecture (new cell ids), other code, its own run id."""
  run = []
  for record in found:
    if record['arch'] != 'lstm':
      continue
    record = copy.deepcopy(record)
    record.update(arch=arch, cell_id='new-' + record['cell_id'], run_id='plugin-run')
    record['env'].update(code_version=code, protocol=protocol, plugins=['mingru.py'])
    if cpu:
      record['env']['cpu'] = cpu
    run.append(record)
  return run


def test_merged_table_puts_the_plugin_beside_the_committed_architectures(tmp_path, capsys):
  base = _write(tmp_path / 'base', _quick())
  plugin = _write(tmp_path / 'plugin', _plugin_run(_quick()))
  out = tmp_path / 'merged'
  assert cli.run(['archbench', 'report', str(base), str(plugin), '--out', str(out)]) == 0
  summary = (out / 'summary.md').read_text()
  accuracy = summary.split('## Accuracy')[1].split('##')[0]
  rows = {line.split('|')[1].strip() for line in accuracy.splitlines() if line.startswith('| ')}
  assert {'mingru', 'lstm', 'transformer', 'gru'} <= rows
  assert 'Runs in this table' in summary and 'plugin-run' in summary
  merged = records_lib.load_records(out / 'results.jsonl')
  assert len(merged) == len(_quick()) + sum(r['arch'] == 'lstm' for r in _quick())
  assert json.loads((out / merge.MERGED_FILE).read_text())['sources'] == [str(base),
                                                                         str(plugin)]
  assert (out / 'report.html').is_file()
  assert 'records from 2 run(s)' in capsys.readouterr().out


def test_runs_of_different_code_must_declare_the_same_protocol(tmp_path):
  older = _write(tmp_path / 'older', _quick(protocol=None))
  plugin = _write(tmp_path / 'plugin', _plugin_run(_quick()))
  with pytest.raises(merge.UsageError, match='protocol') as refused:
    merge.merge([merge.load(older), merge.load(plugin)])
  assert str(older) in str(refused.value) and str(plugin) in str(refused.value)
  other = _write(tmp_path / 'other', _plugin_run(_quick(), code='beef', protocol=PROTOCOL + 1))
  with pytest.raises(merge.UsageError, match='protocol'):
    merge.merge([merge.load(tmp_path / 'plugin'), merge.load(other)])
  # The same code needs no declaration: records older than the protocol merge with their own.
  same = _write(tmp_path / 'same', _plugin_run(_quick(protocol=None), protocol=None,
                                               code=_quick()[0]['env']['code_version']))
  found, _ = merge.merge([merge.load(older), merge.load(same)])
  assert {r['arch'] for r in found} >= {'mingru', 'lstm'}


def test_a_cell_recorded_twice_counts_once_and_an_ok_record_wins(tmp_path):
  quick = _quick()
  failed = copy.deepcopy(quick[:3])
  for record in failed:
    record.update(status='failed', run_id='failed-run', metrics={})
  first = _write(tmp_path / 'first', failed)
  second = _write(tmp_path / 'second', quick)
  found, notes = merge.merge([merge.load(first), merge.load(second)])
  assert len(found) == len(quick)
  assert len({r['cell_id'] for r in found}) == len(found)
  assert all(r['status'] == 'ok' for r in found if r['cell_id'] in
             {f['cell_id'] for f in failed})
  assert any('recorded more than once' in note and '3 cell(s)' in note for note in notes)
  # The merged order: runs as given, each in its own cell order, numbered anew.
  assert [r['config']['cell_index'] for r in found] == list(range(len(found)))


def test_the_summary_says_where_machines_differ(tmp_path):
  base = _write(tmp_path / 'base', _quick())
  plugin = _write(tmp_path / 'plugin', _plugin_run(_quick(), cpu='Other CPU'))
  found, notes = merge.merge([merge.load(base), merge.load(plugin)])
  assert any('different machines' in note and 'Other CPU' in note for note in notes)
  section = '\n'.join(merge.runs_section(found))
  assert 'different machines' in section and 'step times' in section
  same_machine = merge.merge([merge.load(base), merge.load(_write(
      tmp_path / 'same', _plugin_run(_quick())))])[0]
  assert 'different machines' not in '\n'.join(merge.runs_section(same_machine))
  assert not merge.runs_section(_quick())  # one run: no section


def test_out_must_not_be_a_merged_run_itself(tmp_path, capsys):
  base = _write(tmp_path / 'base', _quick())
  plugin = _write(tmp_path / 'plugin', _plugin_run(_quick()))
  assert cli.run(['archbench', 'report', str(base), str(plugin), '--out', str(base)]) == 2
  err = capsys.readouterr().err
  assert 'one of the runs merged' in err and len(err.strip().splitlines()) == 1
  assert cli.run(['archbench', 'report', str(base), str(plugin)]) == 2
  assert '--out' in capsys.readouterr().err


def _archbench(*args, cwd=REPO):
  return subprocess.run([sys.executable, '-m', 'archbench.benchmarks', *map(str, args)],
                        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_reuse_runs_only_the_new_cells_and_the_report_joins_a_committed_run(tmp_path):
  """A plug-in user's path: the baseline's cells copied from a run made by this code, only
  the plug-in's trained; then the plug-in run beside the committed quick run."""
  base, new = tmp_path / 'base', tmp_path / 'new'
  made = _archbench('run', '--suite', 'smoke', '--archs', 'lstm', '--tasks', 'adding,copy',
                    '--out', base)
  assert made.returncode == 0, made.stderr[-2000:]
  reused = _archbench('run', '--suite', 'smoke', '--plugin', PLUGIN, '--archs', 'lstm,mingru',
                      '--tasks', 'adding,copy', '--reuse', base, '--out', new)
  assert reused.returncode == 0, reused.stderr[-2000:]
  assert '2 of 4 cells reused' in reused.stdout
  found = records_lib.load_records(new / 'results.jsonl')
  before = {r['cell_id']: r for r in records_lib.load_records(base / 'results.jsonl')}
  for record in found:
    if record['arch'] == 'lstm':  # copied, not run: the very measurement, and where from
      assert record['ran_on']['reused_from']['run'] == str(base)
      assert record['metrics'] == before[record['cell_id']]['metrics']
      assert record['run_id'] == before[record['cell_id']]['run_id']
    else:
      assert 'reused_from' not in record['ran_on'] and record['status'] == 'ok'
  assert sorted(r['arch'] for r in found) == ['lstm', 'lstm', 'mingru', 'mingru']
  # Another code version (a plug-in changed) reuses nothing.
  changed = tmp_path / 'mingru_changed.py'
  changed.write_text(PLUGIN.read_text() + '\n# changed\n')
  again = _archbench('run', '--suite', 'smoke', '--plugin', changed, '--archs', 'mingru',
                     '--tasks', 'adding', '--reuse', new, '--out', tmp_path / 'again')
  assert again.returncode == 0 and '0 of 1 cells reused' in again.stdout, again.stdout[-500:]
  # The plug-in run beside the committed quick run, in one table.
  joined = _archbench('report', QUICK, new, '--out', tmp_path / 'joined')
  assert joined.returncode == 0, joined.stderr[-2000:]
  table = (tmp_path / 'joined' / 'summary.md').read_text().split('## Held-out loss')[0]
  rows = [line.split('|')[1].strip() for line in table.splitlines() if line.startswith('| ')]
  assert any(r.startswith('mingru') for r in rows), rows
  assert any(r.startswith('transformer') for r in rows), rows
