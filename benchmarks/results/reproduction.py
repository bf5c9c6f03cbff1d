"""Reproductions of published results (`archbench reproduce NAME`): a paper's numbers,
their sources and the paper's own aggregation rule, judged against a run's records.

A reproduction is a suite config (benchmarks/reproductions/<name>.py) with one more
field, `reproduction`, built by `spec(...)` from `expect(...)` rows and `claim(...)`s:

- a row names a (model, task[, parameters]) cell group, the metric the paper reports, the
  paper's number and where it is printed (table, page, or the authors' repository file);
- a claim is a qualitative statement of the paper (which model wins, which fails, by how
  much at least), checked on the run's aggregated values;
- the seeds are aggregated by the paper's rule (mean, median or max over seeds; archbench
  always evaluates the last checkpoint, so a paper that picks its best checkpoint is a
  departure, listed as one);
- every departure from the paper's protocol is listed.

Verdicts. At full size (the paper's budget) a row is `reproduced` when the paper's number
lies within the range of archbench's seeds (for a max or min rule, or one seed: within
rounding of archbench's value),
`within tolerance` when |archbench - paper| <= the tolerance, and `differs` beyond it.
The tolerance is compare.py's smallest change worth a verdict (±0.02 for accuracies;
±10%, at least 0.001, for losses), widened to 3 standard deviations of archbench's seeds
when the rule is a mean or median over several: a paper's single number carries at least
one run's noise.
At the reduced `-cpu` size the numbers cannot match (shorter sequences, fewer steps), so
rows are judged on the paper's qualitative outcome: each row's `solved_if` rule applied to
the paper's number and to archbench's gives `qualitative: reproduced` when they agree and
`qualitative: differs` when they do not (`archbench only` where the paper has no number);
claims give `qualitative: holds` or `fails`. A rule relative to the baseline needs the
records' `baseline/<metric>`, which length-generalisation metrics (ood/...) have not.
"""
from __future__ import annotations

import json
import math
import pathlib
import statistics
from typing import Any

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import compare, markup, metrics
from archbench.common import files

SEED_RULES = ('mean', 'median', 'max', 'min')
SIZES = ('full', 'cpu')
FILE_MD, FILE_JSON, FILE_TEX = 'reproduction.md', 'reproduction.json', 'reproduction.tex'
REPRODUCED, WITHIN, DIFFERS, NOT_RUN = 'reproduced', 'within tolerance', 'differs', 'not run'
ARCHBENCH_ONLY = 'archbench only'  # a row the paper has no number for


# ---------------------------------------------------------------------------------------
# Building a reproduction's spec (what reproduction files call).

def expect(arch: str, task: str, metric: str, paper: float | None, source: str, *,
           where: dict | None = None, setting: str = '', solved_if: tuple | None = None,
           paper_baseline: float | None = None, label: str = 'solved') -> dict[str, Any]:
  """One row: the paper's `paper` value of `metric` for `arch` on `task` (cells whose task
  parameters include `where`), printed at `source`. `setting` says what differs between
  the paper's cell and this one (e.g. 'paper T=600, here T=200').

  solved_if: (op, threshold) or (op, threshold, 'baseline'), op '<=' or '>=': the
  qualitative outcome (`label`, e.g. 'solved') applied alike to the paper's number and to
  archbench's; with 'baseline' the threshold is a fraction of the task's constant-
  predictor baseline (the paper's is `paper_baseline`)."""
  if solved_if is not None and (solved_if[0] not in ('<=', '>=') or len(solved_if) not in (2, 3)):
    raise ValueError(f'solved_if {solved_if!r}: (op, threshold[, "baseline"]), op <= or >=')
  return {'arch': arch, 'task': task, 'metric': metric, 'paper': paper, 'source': source,
          'where': dict(where or {}), 'setting': setting,
          'solved_if': list(solved_if) if solved_if else None,
          'paper_baseline': paper_baseline, 'label': label}


def claim(text: str, task: str, metric: str, better: str, than: tuple[str, ...], *,
          where: dict | None = None, factor: float | None = None,
          margin: float | None = None) -> dict[str, Any]:
  """A qualitative claim: `better` beats every model in `than` ('baseline': the task's
  constant predictor) on `metric` by at least `margin` (absolute) or `factor` (a ratio, for
  losses)."""
  return {'text': text, 'task': task, 'metric': metric, 'better': better,
          'than': list(than), 'where': dict(where or {}), 'factor': factor, 'margin': margin}


def spec(*, title: str, paper: str, size: str, seeds_rule: str, seeds_rule_source: str,
         checkpoint: str, rows: list[dict], departures: list[str], claims: list[dict] = (),
         runtime: str = '', notes: list[str] = ()) -> dict[str, Any]:
  """A reproduction's `reproduction` field. `checkpoint` states the paper's checkpoint rule
  (archbench evaluates the last weights); `runtime` what the size takes."""
  if size not in SIZES:
    raise ValueError(f'size {size!r}; valid: {", ".join(SIZES)}')
  if seeds_rule not in SEED_RULES:
    raise ValueError(f'seeds_rule {seeds_rule!r}; valid: {", ".join(SEED_RULES)}')
  return {'title': title, 'paper': paper, 'size': size, 'qualitative': size == 'cpu',
          'seeds_rule': seeds_rule, 'seeds_rule_source': seeds_rule_source,
          'checkpoint': checkpoint, 'rows': list(rows), 'claims': list(claims),
          'departures': list(departures), 'runtime': runtime, 'notes': list(notes)}


def plain(value):
  """The spec as plain JSON data (a ConfigDict holds it as ConfigDicts and tuples)."""
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  return json.loads(json.dumps(value, default=list))


# ---------------------------------------------------------------------------------------
# Judging.

def _matches(record, arch, task, where) -> bool:
  params = (record.get('config') or {}).get('task') or {}
  return (record['arch'] == arch and record['task'] == task
          and all(params.get(k) == v for k, v in where.items()))


def _aggregate(values: list[float], rule: str) -> float:
  return {'mean': statistics.fmean, 'median': statistics.median, 'max': max,
          'min': min}[rule](values)


def _group(records, arch, task, where, metric):
  """(values per seed, seeds, baselines, statuses) of the records of one row."""
  found = [r for r in records if _matches(r, arch, task, where)]
  ok = [r for r in found if r['status'] == 'ok' and r['metrics'].get(metric) is not None]
  return ([float(r['metrics'][metric]) for r in ok], [r['seed'] for r in ok],
          [r['metrics'].get(f'baseline/{metric}') for r in ok],
          sorted({r['status'] for r in found if r['status'] != 'ok'}))


def tolerance(metric: str, paper: float, values: list[float],
              rule: str = 'mean') -> tuple[float, str]:
  """(tolerance, how it was set) for |archbench - paper| at full size. The seeds' spread
  widens it for a mean or median only: a maximum (or minimum) over seeds is an extreme,
  and a spread of failed and solved seeds would make it meaningless."""
  if metrics.is_bounded(metric):
    floor, text = compare.MIN_CHANGE_ABS, f'±{compare.MIN_CHANGE_ABS:g}'
  else:
    floor = max(compare.MIN_CHANGE_REL * abs(paper), compare.MIN_CHANGE_UNBOUNDED_ABS)
    text = (f'±{compare.MIN_CHANGE_REL:.0%} of the paper\'s value, at least '
            f'{compare.MIN_CHANGE_UNBOUNDED_ABS:g}')
  if len(values) >= 2 and rule in ('mean', 'median'):
    band = compare.SIGMA_K * statistics.stdev(values)
    if band > floor:
      return band, f'{compare.SIGMA_K:g}σ of {len(values)} seeds'
  return floor, text


def _outcome(rule, value, baseline) -> bool | None:
  if rule is None or value is None:
    return None
  op, threshold = rule[0], float(rule[1])
  if len(rule) == 3:
    if baseline is None:
      return None
    threshold *= baseline
  return value <= threshold if op == '<=' else value >= threshold


def judge_row(row: dict, records: list[dict], rule: str, qualitative: bool) -> dict[str, Any]:
  values, seeds, baselines, failed = _group(records, row['arch'], row['task'], row['where'],
                                            row['metric'])
  out = {**row, 'values': values, 'seeds': seeds, 'failed': failed, 'value': None,
         'mean': None, 'std': None, 'difference': None, 'tolerance': None,
         'tolerance_source': '', 'verdict': NOT_RUN}
  if not values:
    return out
  value = _aggregate(values, rule)
  out.update(value=value, mean=statistics.fmean(values),
             std=statistics.stdev(values) if len(values) > 1 else None)
  paper = row['paper']
  if paper is not None:
    out['difference'] = value - paper
  if qualitative:
    base = next((b for b in baselines if b is not None), None)
    ours = _outcome(row['solved_if'], value, base)
    theirs = _outcome(row['solved_if'], paper, row['paper_baseline'])
    out['outcome'], out['paper_outcome'] = ours, theirs
    if theirs is None:
      out['verdict'] = ARCHBENCH_ONLY
    elif ours is None:
      out['verdict'] = 'qualitative: no claim'
    else:
      out['verdict'] = 'qualitative: ' + (REPRODUCED if ours == theirs else DIFFERS)
    return out
  if paper is None:
    out['verdict'] = 'no paper number'
    return out
  tol, source = tolerance(row['metric'], paper, values, rule)
  out.update(tolerance=tol, tolerance_source=source)
  # A mean or median over seeds is reproduced by a paper's number inside the seeds' range;
  # a maximum or minimum is itself one seed's extreme, compared within rounding.
  within_range = (min(values) <= paper <= max(values)
                  if len(values) > 1 and rule in ('mean', 'median')
                  else abs(value - paper) <= _rounding(paper))
  out['verdict'] = REPRODUCED if within_range else (
      WITHIN if abs(value - paper) <= tol else DIFFERS)
  return out


def _rounding(paper: float) -> float:
  """Half a unit of the paper's printed precision, for values given as fractions of the
  printed percentage or with 3 significant digits."""
  if paper == 0:
    return 0.0
  return 0.5 * 10 ** (math.floor(math.log10(abs(paper))) - 2)


def judge_claim(c: dict, records: list[dict], rule: str) -> dict[str, Any]:
  def value_of(arch):
    if arch == 'baseline':
      _, _, baselines, _ = _group(records, c['better'], c['task'], c['where'], c['metric'])
      return next((b for b in baselines if b is not None), None)
    values = _group(records, arch, c['task'], c['where'], c['metric'])[0]
    return _aggregate(values, rule) if values else None

  mine = value_of(c['better'])
  others = {a: value_of(a) for a in c['than']}
  out = {**c, 'value': mine, 'others': others}
  if mine is None or any(v is None for v in others.values()):
    return {**out, 'verdict': NOT_RUN}
  spec = next((metrics.task_spec(r) for r in records
               if _matches(r, c['better'], c['task'], c['where']) and metrics.task_spec(r)), {})
  higher = metrics.higher_is_better(c['metric'], spec)
  holds = True
  for other in others.values():
    if c['factor'] is not None:
      holds &= mine != other and ((mine >= c['factor'] * other) if higher
                                  else (other >= c['factor'] * mine))
    else:
      gap = (mine - other) if higher else (other - mine)
      holds &= gap >= (c['margin'] or 0.0) and gap > 0
  return {**out, 'verdict': 'qualitative: ' + ('holds' if holds else 'fails')}


def judge(reproduction: dict, records: list[dict]) -> dict[str, Any]:
  rule, qualitative = reproduction['seeds_rule'], reproduction['qualitative']
  rows = [judge_row(r, records, rule, qualitative) for r in reproduction['rows']]
  claims = [judge_claim(c, records, rule) for c in reproduction['claims']]
  first = records[0] if records else {}
  return {'reproduction': reproduction, 'rows': rows, 'claims': claims,
          'run_id': first.get('run_id'), 'suite': first.get('suite'),
          'machine': (first.get('env') or {}).get('cpu'),
          'cells': len(records), 'failed': sum(r['status'] != 'ok' for r in records),
          'seeds': sorted({r['seed'] for r in records})}


# ---------------------------------------------------------------------------------------
# Writing.

def _num(x: float | None) -> str:
  if x is None:
    return '–'
  if x == 0:
    return '0'
  return f'{x:.3g}' if abs(x) < 0.01 or abs(x) >= 1000 else f'{x:.4f}'.rstrip('0').rstrip('.')


def _signed(x: float | None) -> str:
  return '–' if x is None else ('+' if x > 0 else '') + _num(x)


def _spread(row) -> str:
  if row['mean'] is None:
    return '–'
  std = f' ± {_num(row["std"])}' if row['std'] is not None else ''
  return f'{_num(row["mean"])}{std} (n={len(row["values"])})'


def duration(seconds: float) -> str:
  minutes, secs = divmod(round(seconds), 60)
  return f'{minutes} min {secs} s' if minutes else f'{secs} s'


def _yes(outcome: bool) -> str:
  return 'yes' if outcome else 'no'


def to_markdown(judged: dict) -> str:
  rep = judged['reproduction']
  rule = rep['seeds_rule']
  size = ('reduced CPU budget: verdicts are qualitative' if rep['qualitative']
          else "the paper's budget")
  took = ''
  if judged.get('wall_s'):
    took = f' in {duration(judged["wall_s"])} wall time on {judged.get("machine") or "?"}'
  lines = [f'# Reproduction: {rep["title"]}', '',
           f'{rep["paper"]}. Size: {size}.', '',
           f'Run `{judged["run_id"]}` (suite `{judged["suite"]}`): {judged["cells"]} cells{took}, '
           f'{judged["failed"]} failed; seeds {", ".join(map(str, judged["seeds"]))}. '
           f'Seeds aggregated by **{rule}** ({rep["seeds_rule_source"]}); checkpoint: '
           f'{rep["checkpoint"]}.', '', '## Table', '',
           f'| model | task | metric | setting | paper | archbench ({rule}) | mean ± std '
           '| difference | verdict |', '|---|---|---|---|---|---|---|---|---|']
  for r in judged['rows']:
    verdict = r['verdict']
    if r.get('failed'):
      verdict += f' ({", ".join(r["failed"])} on some seed)'
    if rep['qualitative'] and r.get('outcome') is not None:
      paper = '' if r.get('paper_outcome') is None else f'paper {_yes(r["paper_outcome"])}, '
      verdict += f' ({r["label"]}: {paper}archbench {_yes(r["outcome"])})'
    lines.append(f'| {r["arch"]} | {r["task"]} | {r["metric"]} | {r["setting"] or "as paper"} '
                 f'| {_num(r["paper"])} | {_num(r["value"])} | {_spread(r)} '
                 f'| {_signed(r["difference"])} | {verdict} |')
  if judged['claims']:
    lines += ['', '## Claims', '', '| claim | archbench values | verdict |', '|---|---|---|']
    for c in judged['claims']:
      values = ', '.join([f'{c["better"]} {_num(c["value"])}']
                         + [f'{a} {_num(v)}' for a, v in c['others'].items()])
      lines.append(f'| {c["text"]} | {values} | {c["verdict"]} |')
  counts: dict[str, int] = {}
  for item in judged['rows'] + judged['claims']:
    counts[item['verdict']] = counts.get(item['verdict'], 0) + 1
  lines += ['', '## Verdicts', '', ', '.join(f'{n} {v}' for v, n in counts.items()) + '.']
  lines += ['', '## Tolerance', '']
  if rep['qualitative']:
    rules = sorted({f'{r["label"]}: {r["metric"]} {r["solved_if"][0]} '
                    f'{r["solved_if"][1]:g}{" x the baseline" if len(r["solved_if"]) == 3 else ""}'
                    for r in judged['rows'] if r['solved_if']})
    lines.append('Qualitative: each outcome rule is applied alike to the paper\'s number and '
                 'to archbench\'s; the numbers differ by design (smaller budget). Rules: '
                 + '; '.join(rules) + '.')
  else:
    lines.append('`reproduced`: the paper\'s number lies within the range of archbench\'s '
                 'seeds (one seed: within rounding); `within tolerance`: |difference| <= '
                 'tolerance, which is ±0.02 for accuracies and ±10% (at least 0.001) for '
                 'losses, widened to 3σ of archbench\'s seeds when they spread more.')
    lines += [f'- {r["arch"]} / {r["task"]}: ±{_num(r["tolerance"])} ({r["tolerance_source"]})'
              for r in judged['rows'] if r['tolerance'] is not None]
  lines += ['', '## Departures from the paper', '']
  lines += [f'- {d}' for d in rep['departures']]
  if rep['notes']:
    lines += ['', '## Notes', ''] + [f'- {n}' for n in rep['notes']]
  lines += ['', '## Sources', '']
  lines += [f'- {r["arch"]} / {r["task"]} ({r["metric"]}): {r["source"]}'
            for r in judged['rows'] if r['paper'] is not None]
  return '\n'.join(lines) + '\n'


def write(out_dir: pathlib.Path, reproduction: dict, records: list[dict],
          wall_s: float | None = None) -> dict[str, Any]:
  """Judge `records` and write reproduction.md, .json and .tex (booktabs) in out_dir.
  `wall_s`, the run's wall time, is kept from an earlier write when not given (a re-judge
  by `archbench report` does not know it)."""
  judged = judge(reproduction, records)
  if wall_s is None and (out_dir / FILE_JSON).is_file():
    wall_s = json.loads((out_dir / FILE_JSON).read_text(encoding='utf-8')).get('wall_s')
  judged['wall_s'] = wall_s
  text = to_markdown(judged)
  files.write_atomically(out_dir / FILE_MD, text)
  files.write_atomically(out_dir / FILE_JSON, json.dumps(judged, indent=1) + '\n')
  files.write_atomically(out_dir / FILE_TEX, markup.latex_tables(text, preamble=(
      f'archbench reproduction: {reproduction["title"]}; rebuilt by `archbench report DIR`.')))
  return judged


def write_spec(out_dir: pathlib.Path, reproduction: dict) -> None:
  """Write the spec alone to out_dir/reproduction.json before the run starts, so that a
  killed reproduction, resumed with `archbench run --resume`, is judged by `archbench
  report DIR` (saved() reads it back)."""
  files.write_atomically(out_dir / FILE_JSON, json.dumps({'reproduction': reproduction},
                                                         indent=1))


def saved(out_dir: pathlib.Path) -> dict | None:
  """The reproduction spec a run directory was judged against, if it is a reproduction."""
  path = out_dir / FILE_JSON
  if not path.is_file():
    return None
  try:
    spec = json.loads(path.read_text(encoding='utf-8'))['reproduction']
    missing = {'rows', 'claims', 'seeds_rule', 'qualitative', 'title'} - set(spec)
  except (ValueError, KeyError, TypeError):
    missing = {'reproduction'}
  if missing:
    raise UsageError(f'{path} is not a reproduction written by archbench (no '
                     f'{", ".join(sorted(missing))})')
  return spec
