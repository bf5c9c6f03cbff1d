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

Verdicts, one rule at both sizes. Each row's value (archbench's, by the seed rule) and the
paper's are placed at a level, `at chance`, `partial` or `solved` (metrics.level), against
the row's trivial baselines (the records' baseline/... keys, the row's declared `chance`,
and declared `baselines` where older records lack one; the paper's own setting may have
its own, `paper_baselines`) and its solved threshold. Then:

- `reproduced`: archbench's value is within the row's tolerance of the paper's, and not
  one of them at chance while the other is above it;
- `same outcome`: beyond the tolerance, both at the same level ("both at chance");
- `differs`: anything else (the paper above chance against archbench at chance always);
- `archbench only`: no paper number (archbench's level is still shown).

The tolerance is a band around archbench's aggregated value: ±0.02 for metrics bounded in
[0, 1]; for unbounded ones (losses, MSE, bits/char) a factor 1.25, |ln(archbench /
paper)| <= ln(1.25) (metrics.RATIO_BAND), never an absolute floor, which would accept 17x
a loss of 5.8e-5. With a mean or median over several seeds it widens to a prediction band
for one more run, PREDICTION_K x the seeds' standard deviation (of their logs, for
unbounded metrics) x sqrt(1 + 1/n): the paper's number is one run, not a mean. A maximum or
minimum over seeds is an extreme and is not widened. At the reduced `-cpu` size the
numbers rarely match (shorter sequences, fewer steps), so its rows mostly read `same
outcome` or `differs`; claims (who wins, by how much at least; `baseline` meaning the
strongest trivial baseline) give `qualitative: holds` or `fails`.
"""
from __future__ import annotations

import json
import math
import pathlib
import statistics
from typing import Any

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import compare, markup, metrics
from archbench.benchmarks.results import records as records_lib
from archbench.common import files

SEED_RULES = ('mean', 'median', 'max', 'min')
SIZES = ('full', 'cpu')
FILE_MD, FILE_JSON, FILE_TEX = 'reproduction.md', 'reproduction.json', 'reproduction.tex'
REPRODUCED, SAME_OUTCOME, DIFFERS, NOT_RUN = 'reproduced', 'same outcome', 'differs', 'not run'
ARCHBENCH_ONLY = 'archbench only'  # a row the paper has no number for
# A mean or median's band: k standard deviations of one more run about archbench's mean
# (two: about 95% of single runs, where three would accept most unstable seeds).
PREDICTION_K = 2.0


# ---------------------------------------------------------------------------------------
# Building a reproduction's spec (what reproduction files call).

def expect(arch: str, task: str, metric: str, paper: float | None, source: str, *,
           where: dict | None = None, setting: str = '', solved_if: tuple | None = None,
           chance: float | None = None, baselines: dict | None = None,
           paper_baselines: dict | None = None) -> dict[str, Any]:
  """One row: the paper's `paper` value of `metric` for `arch` on `task` (cells whose task
  parameters include `where`), printed at `source`. `setting` says what differs between
  the paper's cell and this one (e.g. 'paper T=600, here T=200').

  solved_if: (op, threshold) or (op, threshold, 'baseline'), op '<=' or '>=' (the metric's
  direction): the solved threshold, as a multiple of the strongest trivial baseline with
  'baseline'; default: the task's own (records' task_spec) for its headline metric.
  chance: a uniform guess's value, on both sides (for metrics whose records carry no
  baseline, e.g. accuracy beyond the training lengths). baselines: name -> value,
  archbench's trivial baselines where its records lack them (the records' own win).
  paper_baselines: name -> value in the paper's setting, where it differs from archbench's."""
  if solved_if is not None and (solved_if[0] not in ('<=', '>=') or len(solved_if) not in (2, 3)):
    raise ValueError(f'solved_if {solved_if!r}: (op, threshold[, "baseline"]), op <= or >=')
  return {'arch': arch, 'task': task, 'metric': metric, 'paper': paper, 'source': source,
          'where': dict(where or {}), 'setting': setting,
          'solved_if': list(solved_if) if solved_if else None, 'chance': chance,
          'baselines': dict(baselines or {}),
          'paper_baselines': dict(paper_baselines) if paper_baselines is not None else None}


def claim(text: str, task: str, metric: str, better: str, than: tuple[str, ...], *,
          where: dict | None = None, factor: float | None = None,
          margin: float | None = None, baselines: dict | None = None) -> dict[str, Any]:
  """A qualitative claim: `better` beats every model in `than` ('baseline': the task's
  strongest trivial baseline, from the records or, where they lack one, `baselines`) on
  `metric` by at least `margin` (absolute) or `factor` (a ratio, for losses)."""
  return {'text': text, 'task': task, 'metric': metric, 'better': better,
          'than': list(than), 'where': dict(where or {}), 'factor': factor, 'margin': margin,
          'baselines': dict(baselines or {})}


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


def _found(records, arch, task, where) -> list[dict]:
  return [r for r in records if _matches(r, arch, task, where)]


def _group(records, arch, task, where, metric):
  """(values per seed, seeds, trivial baselines, statuses, task spec) of a row's records."""
  found = _found(records, arch, task, where)
  ok = [r for r in found if r['status'] == 'ok' and r['metrics'].get(metric) is not None]
  baselines: dict[str, float] = {}
  for r in ok:
    baselines = {**metrics.trivial_baselines(r['metrics'], metric), **baselines}
  spec = next((metrics.task_spec(r) for r in found if metrics.task_spec(r)), {})
  return ([float(r['metrics'][metric]) for r in ok], [r['seed'] for r in ok], baselines,
          sorted({r['status'] for r in found if r['status'] != 'ok'}), spec)


def tolerance(metric: str, values: list[float], rule: str = 'mean') -> tuple[float, str, bool]:
  """(band, how it was set, whether it bounds |ln(archbench / paper)| rather than the
  difference) about archbench's aggregated `values` (module docstring)."""
  log_scale = not metrics.is_bounded(metric) and min(values) > 0
  if metrics.is_bounded(metric):
    band, text = compare.MIN_CHANGE_ABS, f'±{compare.MIN_CHANGE_ABS:g}'
  elif log_scale:
    band, text = compare.LOG_BAND, f'×/÷{metrics.RATIO_BAND:g}'
  else:
    band = (metrics.RATIO_BAND - 1) * abs(_aggregate(values, rule))
    text = f'±{metrics.RATIO_BAND - 1:.0%}'
  if len(values) >= 2 and rule in ('mean', 'median'):
    scaled = [math.log(v) for v in values] if log_scale else values
    spread = PREDICTION_K * statistics.stdev(scaled) * math.sqrt(1 + 1 / len(values))
    if spread > band:
      return spread, (f'{PREDICTION_K:g}σ{" of ln" if log_scale else ""} of one run, from '
                      f'{len(values)} seeds'), log_scale
  return band, text, log_scale


def _distance(value: float, paper: float, log_scale: bool) -> float:
  """|archbench - paper| on the tolerance's scale (inf where a log cannot be taken)."""
  if not log_scale:
    return abs(value - paper)
  ratio = metrics.log_ratio(value, paper)
  return math.inf if ratio is None else abs(ratio)


def _solved_threshold(rule, spec: dict, metric: str, baselines: dict, higher: bool):
  if rule is None:
    return spec.get('solved') if spec.get('metric') == metric else None
  threshold = float(rule[1])
  if len(rule) == 3:
    best = metrics.strongest(baselines, higher)
    return None if best is None else threshold * best[1]
  return threshold


def _with_chance(baselines: dict, chance: float | None) -> dict[str, float]:
  return baselines if chance is None else {'chance': chance, **baselines}


def judge_row(row: dict, records: list[dict], rule: str) -> dict[str, Any]:
  values, seeds, measured, failed, spec = _group(records, row['arch'], row['task'],
                                                 row['where'], row['metric'])
  ours_base = _with_chance({**(row.get('baselines') or {}), **measured}, row.get('chance'))
  paper_base = row.get('paper_baselines')
  if paper_base is None and row.get('paper_baseline') is not None:  # a spec before levels
    paper_base = {'constant': row['paper_baseline']}
  paper_base = ours_base if paper_base is None else _with_chance(paper_base, row.get('chance'))
  out = {**row, 'values': values, 'seeds': seeds, 'failed': failed, 'value': None,
         'mean': None, 'std': None, 'difference': None, 'tolerance': None,
         'tolerance_source': '', 'log_scale': False, 'level': None, 'paper_level': None,
         'trivial_baselines': ours_base, 'paper_trivial_baselines': paper_base,
         'verdict': NOT_RUN,
         'partial_view': records_lib.partial_view_mark(
             _found(records, row['arch'], row['task'], row['where']))}
  if not values:
    return out
  value, paper, metric = _aggregate(values, rule), row['paper'], row['metric']
  higher = metrics.higher_is_better(metric, spec)
  out.update(value=value, mean=statistics.fmean(values), higher_is_better=higher,
             std=statistics.stdev(values) if len(values) > 1 else None)
  out['level'] = metrics.level(value, ours_base, _solved_threshold(
      row['solved_if'], spec, metric, ours_base, higher), metric, higher)
  if paper is None:
    out['verdict'] = ARCHBENCH_ONLY
    return out
  out['paper_level'] = metrics.level(paper, paper_base, _solved_threshold(
      row['solved_if'], spec, metric, paper_base, higher), metric, higher)
  band, source, log_scale = tolerance(metric, values, rule)
  out.update(difference=value - paper, tolerance=band, tolerance_source=source,
             log_scale=log_scale)
  ours, theirs = out['level'], out['paper_level']
  chance_split = None not in (ours, theirs) and (ours == metrics.AT_CHANCE) != (
      theirs == metrics.AT_CHANCE)
  if _distance(value, paper, log_scale) <= band and not chance_split:
    out['verdict'] = REPRODUCED
  elif ours is not None and ours == theirs:
    out['verdict'] = SAME_OUTCOME
  else:
    out['verdict'] = DIFFERS
  return out


def judge_claim(c: dict, records: list[dict], rule: str) -> dict[str, Any]:
  def value_of(arch):
    if arch == 'baseline':
      measured = _group(records, c['better'], c['task'], c['where'], c['metric'])[2]
      best = metrics.strongest({**(c.get('baselines') or {}), **measured}, higher)
      return None if best is None else best[1]
    values = _group(records, arch, c['task'], c['where'], c['metric'])[0]
    return _aggregate(values, rule) if values else None

  spec = _group(records, c['better'], c['task'], c['where'], c['metric'])[4]
  higher = metrics.higher_is_better(c['metric'], spec)
  mine = value_of(c['better'])
  others = {a: value_of(a) for a in c['than']}
  out = {**c, 'value': mine, 'others': others}
  if mine is None or any(v is None for v in others.values()):
    return {**out, 'verdict': NOT_RUN}
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
  rule = reproduction['seeds_rule']
  rows = [judge_row(r, records, rule) for r in reproduction['rows']]
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


def _levels(row) -> str:
  """The levels behind a verdict, in words: 'both at chance', 'paper partial, archbench at
  chance'."""
  ours, theirs = row.get('level'), row.get('paper_level')
  if row['paper'] is None:
    return ours or ''
  if ours is None or theirs is None:
    return 'no baseline to place it'
  return f'both {ours}' if ours == theirs else f'paper {theirs}, archbench {ours}'


def _baseline_text(row) -> str:
  """archbench's strongest trivial baseline, and the paper's where its setting has another."""
  def best(baselines):
    found = metrics.strongest(baselines or {}, row.get('higher_is_better', True))
    return None if found is None else f'{_num(found[1])} ({found[0].replace("_", " ")})'
  ours, theirs = best(row.get('trivial_baselines')), best(row.get('paper_trivial_baselines'))
  text = ours or '–'
  return text if theirs in (None, ours) or row['paper'] is None else f'{text}; paper {theirs}'


def to_markdown(judged: dict) -> str:
  rep = judged['reproduction']
  rule = rep['seeds_rule']
  size = ('reduced CPU budget: the numbers differ by design, the levels are what compares'
          if rep['qualitative'] else "the paper's budget")
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
           '| difference | strongest trivial baseline | verdict |',
           '|---|---|---|---|---|---|---|---|---|---|']
  for r in judged['rows']:
    verdict = r['verdict']
    if r['verdict'] != NOT_RUN and _levels(r):
      verdict += f' ({_levels(r)})'
    if r.get('failed'):
      verdict += f' ({", ".join(r["failed"])} on some seed)'
    lines.append(f'| {r["arch"]} | {r["task"]} | {r["metric"]} | {r["setting"] or "as paper"} '
                 f'| {_num(r["paper"])} | {_num(r["value"])}{r.get("partial_view", "")} '
                 f'| {_spread(r)} | {_signed(r["difference"])} | {_baseline_text(r)} '
                 f'| {verdict} |')
  if any(r.get('partial_view') for r in judged['rows']):
    lines += ['', records_lib.PARTIAL_VIEW_NOTE + '.']
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
  lines += ['', '## Tolerance', '',
            '`reproduced`: archbench\'s value within the tolerance of the paper\'s, and not one '
            'at chance while the other is above it; `same outcome`: beyond the tolerance, both '
            'at the same level; `differs`: otherwise. Tolerance: ±0.02 for accuracies, a '
            f'factor {metrics.RATIO_BAND:g} either way (|ln(archbench / paper)| <= '
            f'ln {metrics.RATIO_BAND:g}) for losses, MSE and bits/char; for a mean or median '
            f'of several seeds, {PREDICTION_K:g}σ of one run about archbench\'s value when '
            'wider. Levels: `solved` at the solved threshold, `at chance` within '
            f'{metrics.CHANCE_MARGIN_ABS:g} (accuracies) or a factor {metrics.RATIO_BAND:g} '
            '(losses) of the strongest trivial baseline, `partial` between.']
  rules = sorted({f'{r["metric"]} {r["solved_if"][0]} {r["solved_if"][1]:g}'
                  f'{" x the strongest baseline" if len(r["solved_if"]) == 3 else ""}'
                  for r in judged['rows'] if r['solved_if']})
  if rules:
    lines += ['', 'Solved thresholds: ' + '; '.join(rules) + '.']
  widened = [r for r in judged['rows']
             if r['tolerance'] is not None and 'seeds' in r['tolerance_source']]
  lines += [''] if widened else []
  lines += [f'- {r["arch"]} / {r["task"]}: {"×/÷" if r["log_scale"] else "±"}'
            f'{_num(math.exp(r["tolerance"]) if r["log_scale"] else r["tolerance"])} '
            f'({r["tolerance_source"]})' for r in widened]
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
