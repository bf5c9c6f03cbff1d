"""The report of a run, from `results.jsonl` alone: `summary.md` (Markdown), `summary.csv`
and `summary.tex` (the same tables as LaTeX booktabs tables, for a paper: markup.py); with
the plots, `report.html` (html_report.py).

This is the frame: the run's header and the core tables (tables.py) with their statistics
(significance_report.py: pairwise tests, the aggregate, steps to solve), then every report
section (sections.py: the built-in studies long_range.py, length_generalization.py,
scaling.py, image_samples.py and spectrograms.py, then plug-ins' sections), then performance
and the failed cells. The plots
follow the same order (the performance profile first), then the training curves (curves.py).
"""
from __future__ import annotations

import csv
import io
import math
import pathlib
from typing import Any

from archbench.benchmarks.results import (claims, curves, html_report, markup, merge, metrics,
                                           sections, significance, significance_report,
                                           tables)
from archbench.benchmarks.results import records as records_lib
# The built-in studies register their report sections when imported.
from archbench.benchmarks.results import length_generalization, long_range, scaling  # noqa: F401
from archbench.benchmarks.results import image_samples, spectrograms  # noqa: F401
from archbench.common import files


def header(records: list[dict[str, Any]]) -> list[str]:
  """The title and the run's one-line description: cells, run id, machine, versions."""
  first = records[0]
  env = first.get('env', {})
  ok = sum(r['status'] == 'ok' for r in records)
  runs = merge.runs_of(records)
  if len(runs) > 1:  # merged runs, or a run that reused another's records
    suites = ', '.join(f'`{s}`' for s in dict.fromkeys(r['suite'] for r in runs))
    return [f'# archbench summary: {"suite" if "," not in suites else "suites"} {suites}',
            f'{len(records)} cells, {ok} ok · from {len(runs)} runs (see "Runs in this '
            'table") · ' + '; '.join(sorted({r['machine'] for r in runs}))]
  return [
      f'# archbench summary: suite `{first["suite"]}`',
      f'{len(records)} cells, {ok} ok · run `{first["run_id"]}` · '
      f'{merge.machine(first)} · jax {env.get("jax")}, flax {env.get("flax")} · '
      f'commit {str(env.get("git_commit"))[:12]}',
  ]


def core_tables(records: list[dict[str, Any]]) -> list[str]:
  """The headline metric and the held-out loss; none for a cost sweep, whose points are
  timed, not evaluated."""
  if all(records_lib.is_cost_point(r) for r in records):
    return []
  return [
      '## Accuracy (headline metric on held-out data)',
      '↑ higher is better, ↓ lower is better; ✓ meets the task\'s solved threshold; '
      'mean over seeds [95% Student-t interval] n=seeds; '
      f'{significance.SINGLE_SEED_NOTE}.'
      + ('' if all(map(records_lib.sees_whole_input, records))
         else f' {records_lib.PARTIAL_VIEW_NOTE}.')
      + f' {significance_report.budget_text(records)}',
      tables.metric_table(records),
      '## Held-out loss',
      tables.loss_table(records),
  ]


def failed_cells(records: list[dict[str, Any]]) -> list[str]:
  failed = [r for r in records if r['status'] != 'ok']
  if not failed:
    return []
  return ['## Failed cells'] + [
      f'- `{r["arch"]}/{r["task"]}/{r["size"]}/s{r["seed"]}`: **{r["status"]}** — '
      f'{r.get("error")}' for r in failed]


def summary_markdown(records: list[dict[str, Any]]) -> str:
  if not records:
    return '# archbench summary\n\nNo records.\n'
  parts = (header(records) + merge.runs_section(records) + core_tables(records)
           + significance_report.markdown(records))
  for section in sections.all_sections():
    parts += section.markdown(records)
  parts += ['## Performance (training step, median over timed windows)',
            tables.perf_table(records)]
  parts += failed_cells(records)
  return '\n\n'.join(parts) + '\n'


def summary_csv(records: list[dict[str, Any]]) -> str:
  """Long format: one row per record, metrics and perf flattened to columns (curves, i.e.
  list-valued metrics, stay in results.jsonl)."""
  metric_keys = tables.ordered(k for r in records for k, v in r.get('metrics', {}).items()
                               if not isinstance(v, list))
  perf_keys = tables.ordered(k for r in records for k in r.get('perf', {}))
  out = io.StringIO()
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(['run_id', 'suite', 'arch', 'task', 'size', 'seed', 'task_params',
                   'status', 'error'] + metric_keys + [f'perf/{k}' for k in perf_keys])
  for r in records:
    params = ';'.join(f'{k}={v}' for k, v in (r.get('config', {}).get('task') or {}).items())
    writer.writerow([r['run_id'], r['suite'], r['arch'], r['task'], r['size'], r['seed'],
                     params, r['status'], r.get('error') or '']
                    + [r['metrics'].get(k, '') for k in metric_keys]
                    + [r['perf'].get(k, '') for k in perf_keys])
  return out.getvalue()


def summary_latex(records: list[dict[str, Any]]) -> str:
  """summary.md's tables as booktabs tables, each captioned with its heading."""
  first = records[0] if records else {}
  return markup.latex_tables(summary_markdown(records), preamble=(
      f'archbench summary tables: suite {first.get("suite")}, run {first.get("run_id")}; '
      'rebuilt from results.jsonl by `archbench report DIR`.'))


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  """Every plot the records support: the performance profile, each section's, then the
  training curves; returns
  the files written."""
  written = significance_report.write_plots(out_dir, records)
  for section in sections.all_sections():
    if section.plots is not None:
      written += section.plots(out_dir, records)
  return written + curves.write_plots(out_dir, records)


def write_summaries(out_dir: pathlib.Path, plots: bool = False) -> list[dict[str, Any]]:
  """(Re)build summary.md, summary.csv and summary.tex from out_dir/results.jsonl, in the
  suite's cell order (parallel workers append records in the order cells finish), and with
  `plots` the PNG plots and report.html, which embeds them with the tables, the
  reproduction verdicts of out_dir/comparison.md if any, and the environment. Readers
  never see a half-written file."""
  records = records_lib.load_records(out_dir / 'results.jsonl')
  records.sort(key=lambda r: (r.get('config') or {}).get('cell_index', 0))
  summary = summary_markdown(records)
  files.write_atomically(out_dir / 'summary.md', summary)
  files.write_atomically(out_dir / 'summary.csv', summary_csv(records))
  files.write_atomically(out_dir / 'summary.tex', summary_latex(records))
  if plots:
    written = claims.plot_files(out_dir) + write_plots(out_dir, records)
    files.write_atomically(out_dir / 'report.html', html_report.page(
        records, summary, written, html_report.sections_of(out_dir)))
  return records


def progress_line(record) -> str:
  """The progress line of a finished cell: its status, headline metric and step time."""
  if record['status'] != 'ok':
    return f'{record["status"]}: {record.get("error")}'
  key = metrics.headline_metric(record)
  value, base = record['metrics'].get(key), record['metrics'].get(metrics.baseline_key(key))
  perf = record['perf']
  text = f'ok {key}={value:.4g}' if value is not None else 'ok'
  if base is not None:
    text += f' (baseline {base:.4g})'
  if perf.get('step_ms') is not None:
    text += f', {perf["step_ms"]:.2f} ms/step, compile {perf.get("compile_s", math.nan):.1f} s'
  return text
