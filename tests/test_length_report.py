"""Length-generalisation tables and plots from fabricated records alone (no training):
summary.md's section (one table per task, the metric at each evaluation length and its
mean beyond training, mean ± std over seeds), its booktabs form, the PNG per task, and
nothing of it for runs without per-length metrics."""
import numpy as np
import pytest
from PIL import Image

from archbench.benchmarks.core import Cell
from archbench.benchmarks.results import length_generalization
from archbench.benchmarks.results import markup
from archbench.benchmarks.results import plots
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report

HEADING = '## Length generalisation: accuracy per evaluation length'
PNG = b'\x89PNG\r\n\x1a\n'
EVAL_LENGTHS = (20, 40, 60, 80)


def _record(arch, accuracies, *, task='parity_check', seed=0, status='ok', length=40,
            min_length=1, eval_lengths=EVAL_LENGTHS, baseline=0.5):
  """A record as the runner writes it for a cell trained at lengths min_length..length and
  evaluated at `eval_lengths` (`accuracies`, in the same order)."""
  params = {'length': length, 'eval_size': 64}
  if min_length is not None:
    params['min_length'] = min_length
  cell = Cell(arch, task, 'tiny', seed, params, eval_lengths=eval_lengths)
  metrics = {}
  if status == 'ok':
    metrics = {'eval/accuracy': accuracies[0], 'eval/loss': 0.3,
               'baseline/eval/accuracy': baseline}
    for n, acc in zip(eval_lengths, accuracies):
      metrics[f'length/{n}/accuracy'] = acc
      metrics[f'length/{n}/loss'] = 1 - acc
    beyond = [acc for n, acc in zip(eval_lengths, accuracies) if n > length]
    if beyond:
      metrics['ood/accuracy'] = float(np.mean(beyond))
      metrics['ood/loss'] = 1 - float(np.mean(beyond))
  return {'schema': 4, 'run_id': 'r', 'cell_id': cell.digest, 'suite': 'lengths', 'arch': arch,
          'task': task, 'size': 'tiny', 'seed': seed, 'status': status,
          'error': None if status == 'ok' else 'boom',
          'config': {'cell': cell.to_dict(), 'task': params,
                     'task_spec': {'metric': 'eval/accuracy', 'higher_is_better': True,
                                   'solved': 0.9}},
          'metrics': metrics, 'perf': {}, 'curves': {}, 'env': {}}


def _records():
  return [
      _record('lstm', [1.0, 1.0, 0.8, 0.6], seed=0),
      _record('lstm', [1.0, 0.9, 0.6, 0.5], seed=1),
      _record('transformer', [1.0, 0.95, 0.5, 0.5]),
      _record('gru', [], status='error'),  # failed: no metrics, its cell asked for lengths
      # Another task, trained at one fixed length 10, evaluated at 10 and 30.
      _record('lstm', [0.9, 0.7], task='reverse_string', length=10, min_length=None,
              eval_lengths=(10, 30), baseline=0.1),
  ]


def _section(text: str) -> str:
  return text.split(HEADING, 1)[1].split('\n## ', 1)[0]


def _table(section: str, task: str) -> dict[str, dict[str, str]]:
  """arch -> column header -> cell text, of the task's table in the section."""
  body = section.split(f'### Length generalisation: {task}\n', 1)[1].split('\n### ', 1)[0]
  (table,) = [b for b in markup.blocks(body) if b.kind == 'table']
  return {row[0]: dict(zip(table.header, row)) for row in table.rows}


def test_summary_has_a_table_per_task_with_the_mean_over_seeds_per_length():
  text = report.summary_markdown(_records())
  assert text.count(HEADING) == 1
  section = _section(text)
  parity = _table(section, 'parity_check')
  assert list(parity) == ['lstm', 'transformer', 'gru']
  assert list(parity['lstm']) == ['arch', 'trained', 'seeds', 'L=20', 'L=40', 'L=60', 'L=80',
                                  'OOD mean']
  # Mean [95% t interval] over the two seeds, clipped to [0, 1]: at L=40 (1.0, 0.9) the
  # half-width is t(0.975, 1) * 0.0707 / sqrt(2) = 12.71 * 0.05 = 0.635.
  assert parity['lstm'] == {
      'arch': 'lstm', 'trained': '1..40', 'seeds': '2', 'L=20': '1.000 [1.000, 1.000] n=2',
      'L=40': '0.950 [0.315, 1.000] n=2', 'L=60': '0.700 [0.000, 1.000] n=2',
      'L=80': '0.550 [0.000, 1.000] n=2',
      # OOD: the mean over 60 and 80 per seed (0.7, 0.55), then over seeds.
      'OOD mean': '0.625 [0.000, 1.000] n=2'}
  assert parity['transformer'] == {  # one seed: marked, no interval
      'arch': 'transformer', 'trained': '1..40', 'seeds': '1', 'L=20': '1.000 ‡',
      'L=40': '0.950 ‡', 'L=60': '0.500 ‡', 'L=80': '0.500 ‡', 'OOD mean': '0.500 ‡'}
  assert parity['gru']['seeds'] == '0'
  assert {parity['gru'][f'L={n}'] for n in EVAL_LENGTHS} == {'(error)'}
  # A task of its own: its own lengths, a training length without a range.
  reverse = _table(section, 'reverse_string')
  assert reverse == {'lstm': {'arch': 'lstm', 'trained': '10', 'seeds': '1', 'L=10': '0.900 ‡',
                              'L=30': '0.700 ‡', 'OOD mean': '0.700 ‡'}}
  assert 'Accuracy ↑ at each evaluation length; constant baseline at the training length: ' \
         '0.500.' in section
  assert 'constant baseline at the training length: 0.100' in section


def test_rows_split_by_training_length_when_a_run_has_several():
  records = [_record('lstm', [1.0, 0.9, 0.5, 0.5], length=40),
             _record('lstm', [1.0, 1.0, 1.0, 0.7], length=60)]
  table = length_generalization.table(records, 'parity_check')
  rows = [[c.strip() for c in line.strip('|').split('|')] for line in table.splitlines()[2:]]
  assert [r[:3] for r in rows] == [['lstm', '1..40', '1'], ['lstm', '1..60', '1']]
  # beyond 40: 60, 80; beyond 60: 80 (one seed each)
  assert rows[0][-1] == '0.500 ‡' and rows[1][-1] == '0.700 ‡'


def test_summary_tex_renders_the_tables_in_booktabs():
  tex = report.summary_latex(_records())
  for task in ('parity\\_check', 'reverse\\_string'):
    assert rf'\caption[{{Length generalisation: {task}}}]' in tex
  assert r'\label{tab:length-generalisation-parity-check}' in tex
  assert r'lstm & 1..40 & 2 & 1.000 [1.000, 1.000] n=2 & 0.950 [0.315, 1.000] n=2 & ' \
         r'0.700 [0.000, 1.000] n=2 & 0.550 [0.000, 1.000] n=2 & 0.625 [0.000, 1.000] n=2 \\' \
      in tex
  # Numbers right-aligned; a column with a failed cell's status left, as the other tables.
  assert r'\begin{tabular}{lrrrrr}' in tex and r'\begin{tabular}{lrrlllll}' in tex
  assert tex.count(r'\toprule') == tex.count(r'\bottomrule') == tex.count(r'\begin{tabular}')


def test_plot_per_task_is_written_and_not_blank(tmp_path, monkeypatch):
  figures = []
  plt = plots.pyplot()  # matplotlib with the Agg backend
  close = plt.close
  monkeypatch.setattr(plt, 'close', lambda fig: (figures.append(fig), close(fig)))
  written = report.write_plots(tmp_path, _records())
  assert [p.name for p in written] == ['length_generalization_parity_check.png',
                                      'length_generalization_reverse_string.png']
  for path in written:
    assert path.read_bytes()[:8] == PNG
    with Image.open(path) as image:
      pixels = np.asarray(image.convert('L'), dtype=float)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # lines and text drawn
  ax = figures[0].axes[0]
  lines = {line.get_label(): line for line in ax.get_lines()}
  assert set(lines) == {'lstm', 'transformer', 'training length', 'baseline'}  # gru: no data
  assert list(lines['lstm'].get_xdata()) == list(EVAL_LENGTHS)
  np.testing.assert_allclose(lines['lstm'].get_ydata(), [1.0, 0.95, 0.7, 0.55])
  assert list(lines['training length'].get_xdata()) == [40, 40]
  assert lines['training length'].get_linestyle() == '--'
  assert list(lines['baseline'].get_ydata()) == [0.5, 0.5]


def test_report_html_embeds_the_plot_and_the_table(tmp_path):
  for r in _records():
    records_lib.append_record(tmp_path / 'results.jsonl', r)
  report.write_summaries(tmp_path, plots=True)
  page = (tmp_path / 'report.html').read_text()
  assert 'alt="length_generalization_parity_check.png"' in page
  assert 'Length generalisation: accuracy per evaluation length' in page
  assert HEADING in (tmp_path / 'summary.md').read_text()


@pytest.mark.parametrize('strip', ['metrics', 'both'])
def test_runs_without_length_metrics_get_no_section_or_plot(tmp_path, strip):
  records = []
  for r in _records():
    r = dict(r, metrics={k: v for k, v in r['metrics'].items()
                         if not k.startswith(('length/', 'ood/'))})
    if strip == 'both':  # cells that never asked for other lengths, failed ones included
      r['config'] = dict(r['config'], cell={k: v for k, v in r['config']['cell'].items()
                                            if k != 'eval_lengths'})
    elif r['status'] != 'ok':
      continue  # a failed cell that asked for lengths still shows (as failed)
    records.append(r)
  text = report.summary_markdown(records)
  assert 'Length generalisation' not in text
  assert 'length generalisation' not in report.summary_latex(records).lower()
  assert not any('length_generalization' in p.name
                 for p in report.write_plots(tmp_path, records))
