"""`archbench list`: the registered architectures, tasks, suites (each with its config
paths) and evaluators, as plain data or text (specs only: dataset tasks are described without
reading their data)."""
from __future__ import annotations

import math

from archbench import archs, data
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.harness import evaluators
from archbench.benchmarks.harness import model as model_lib


def describe() -> dict:
  """Everything `list` shows, as plain data."""
  # Specs only: dataset tasks are described without reading (or needing) their data.
  task_specs = {name: data.spec_of(name) for name in data.names()}
  arch_info = {}
  for name in archs.names():
    spec = archs.get(name)
    small = spec.config('small')
    notes = spec.details(small) if spec.details else {}
    if spec.receptive_field is not None:
      notes = {**notes, 'receptive field': spec.receptive_field(small),
               'deepened': 'per task, at the same budget, to see the whole input'}
    arch_info[name] = {
        'family': spec.family, 'description': spec.description,
        'input': spec.input_kind,
        'causal': ('grid' if spec.input_kind == 'image' else
                   {True: 'causal', False: 'bidirectional', None: 'configurable'}[spec.causal]),
        'kinds': model_lib.served_kinds(spec),
        'tasks': [t for t, s in task_specs.items() if not model_lib.incompatibility(spec, s)],
        'params': {size: archs.registry.budget_params(name, size) for size in archs.SIZES},
        'width': {size: spec.config(size).width for size in archs.SIZES},
        'depth_fields': list(spec.depth_fields),
        'token_by_token': spec.decoding is not None,
        'notes': notes,
    }
  task_info = {}
  for name, spec in task_specs.items():
    entry = data.get(name)
    task_info[name] = {
        'description': entry.description, 'kind': spec.kind, 'metric': spec.metric,
        # NaN: a dataset task whose threshold, like its baselines, is computed from its data.
        'baselines': spec.baselines, 'solved': spec.solved if math.isfinite(spec.solved) else None,
        'causal': spec.causal, 'defaults': entry.defaults, 'reads_data': entry.reads_data}
  suite_info = {}
  for name in config_lib.suite_files():
    suite = config_lib.load(name)
    suite_info[name] = {'summary': config_lib.summary(suite), 'size': suite.size,
                        'tasks': list(suite.tasks.keys()), 'doc': suite.doc,
                        'config': config_lib.flatten(suite)}
  return {'sizes': archs.SIZES, 'archs': arch_info, 'tasks': task_info, 'suites': suite_info,
          'evaluators': evaluators.describe()}


def compact_paths(paths) -> str:
  """{'tasks.adding.params.length', ...} -> 'name, ..., tasks.{adding,copy}.{params,...}.*'."""
  tasks = list(dict.fromkeys(p.split('.')[1] for p in paths if p.startswith('tasks.')))
  top = [p for p in paths if '.' not in p and p != 'doc']
  plan = ','.join(config_lib.PLAN_FIELDS)
  return (f'{", ".join(top)}, tasks.{{{",".join(tasks)}}}.{{{plan}}}.*, '
          f'{", ".join(s + ".*" for s in ("execution", *config_lib.GLOBAL_SECTIONS))}')


def text(info: dict) -> str:
  """`describe()` as the text `archbench list` prints."""
  w = max(map(len, [*info['archs'], *info['tasks'], *info['suites']]))  # name column
  lines = ['Architectures (family, causality, task kinds served, backbone parameters per '
           'size):']
  for name, a in info['archs'].items():
    params = ', '.join(f'{s} {n / 1e3:,.0f}k' for s, n in a['params'].items())
    extra = ''.join(f'; {k} {v}' for k, v in a.get('notes', {}).items())
    lines.append(f'  {name:{w}s} {a["family"]:17s} {a["causal"]:13s} {a["description"]}'
                 f' [serves {", ".join(a["kinds"])}; {params}{extra}]')
  lines.append('Tasks:')
  for name, t in info['tasks'].items():
    base = (', '.join(f'{k} {v:.3g}' for k, v in t['baselines'].items())
            or 'computed from the data')
    solved = ('solved threshold computed from the data' if t['solved'] is None
              else f'solved at {t["metric"]} {t["solved"]:.4g}')
    lines.append(f'  {name:{w}s} {t["kind"]:9s} {t["description"]} [baseline {base}; {solved}]')
  lines.append('Suites (config paths: set any with --config.<path>=<value>; '
               '`archbench list --suite NAME` shows each value):')
  for name, s in info['suites'].items():
    lines.append(f'  {name:{w}s} size {s["size"]:6s} {s["summary"]}')
    lines.append(f'  {"":{w}s} config: {compact_paths(s["config"])}')
  lines += evaluators.list_lines(info['evaluators'], w)
  return '\n'.join(lines)


def suite_text(suite) -> str:
  """Every config path of one suite and its value, as `--config.<path>=<value>` lines."""
  lines = [f'{suite.name}: {config_lib.summary(suite)}\n']
  lines += [f'  --config.{path}={value!r}' for path, value in config_lib.flatten(suite).items()
            if path != 'doc']
  return '\n'.join(lines)
