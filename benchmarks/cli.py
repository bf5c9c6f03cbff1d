"""archbench command line: `list`, `run`, `report` and `data prepare`. Intentionally short:
the work is done by suites, runner, report and data.

Exit codes: 0 every cell ok, 1 some cell failed (or preparing a dataset failed), 2 bad
usage (one line on stderr).
"""
from __future__ import annotations

import json
import logging as std_logging
import os
import pathlib
import sys

from absl import flags, logging

FLAGS = flags.FlagValues()
flags.DEFINE_string('suite', 'quick', 'Suite to run (see `archbench list`).', flag_values=FLAGS)
flags.DEFINE_list('archs', None, 'Only these architectures (comma-separated).',
                  flag_values=FLAGS)
flags.DEFINE_list('tasks', None, 'Only these tasks (comma-separated).', flag_values=FLAGS)
flags.DEFINE_string('size', None, 'Parameter budget: overrides the suite\'s size.',
                    flag_values=FLAGS)
flags.DEFINE_integer('seed', None, 'Run this seed instead of the suite\'s seeds.',
                     lower_bound=0, upper_bound=2**31 - 1, flag_values=FLAGS)
flags.DEFINE_string('out', None, 'Output directory (default results/runs/<suite>-<UTC>/).',
                    flag_values=FLAGS)
flags.DEFINE_integer('workers', None, 'Cells run at once (default: the suite\'s; timings '
                     'are only comparable with 1).', lower_bound=1, upper_bound=64,
                     flag_values=FLAGS)
flags.DEFINE_bool('json', False, 'list: print JSON.', flag_values=FLAGS)
flags.DEFINE_string('data_dir', None, 'Directory of prepared TFDS datasets (default: '
                    '$ARCHBENCH_DATA_DIR, else $TFDS_DATA_DIR, else ~/tensorflow_datasets).',
                    flag_values=FLAGS)

USAGE = ('usage: archbench {list [--json] | run [flags] | report DIR | '
         'data prepare NAME [--data_dir DIR]}')
COMMANDS = ('list', 'run', 'report', 'data')
_REPO = pathlib.Path(__file__).resolve().parent.parent


class Usage(Exception):
  pass


def _describe() -> dict:
  """Everything `list` shows, as plain data."""
  from archbench import archs
  from archbench import data
  from archbench.benchmarks.harness import model as model_lib
  from archbench.benchmarks import suites
  # Specs only: dataset tasks are described without reading (or needing) their data.
  task_specs = {name: data.spec_of(name) for name in data.names()}
  arch_info = {}
  for name in archs.names():
    spec = archs.get(name)
    arch_info[name] = {
        'family': spec.family, 'description': spec.description,
        'input': spec.input_kind,
        'causal': ('grid' if spec.input_kind == 'image' else
                   {True: 'causal', False: 'bidirectional', None: 'configurable'}[spec.causal]),
        'kinds': model_lib.served_kinds(spec),
        'tasks': [t for t, s in task_specs.items() if not model_lib.incompatibility(spec, s)],
        'params': {size: archs.registry.budget_params(name, size) for size in archs.SIZES},
        'width': {size: spec.config(size).width for size in archs.SIZES},
        'notes': spec.details(spec.config('small')) if spec.details else {},
    }
  task_info = {}
  for name, spec in task_specs.items():
    entry = data.get(name)
    task_info[name] = {
        'description': entry.description, 'kind': spec.kind, 'metric': spec.metric,
        'baselines': spec.baselines, 'solved': spec.solved,
        'causal': spec.causal, 'defaults': entry.defaults, 'reads_data': entry.reads_data}
  suite_info = {name: {'summary': suites.get(name).summary, 'size': suites.get(name).size,
                       'tasks': list(suites.get(name).tasks), 'doc': suites.get(name).doc}
                for name in suites.names()}
  return {'sizes': archs.SIZES, 'archs': arch_info, 'tasks': task_info, 'suites': suite_info}


def cmd_list() -> int:
  info = _describe()
  if FLAGS.json:
    print(json.dumps(info, indent=2))
    return 0
  w = max(map(len, [*info['archs'], *info['tasks'], *info['suites']]))  # name column
  print('Architectures (family, causality, task kinds served, backbone parameters per size):')
  for name, a in info['archs'].items():
    params = ', '.join(f'{s} {n / 1e3:,.0f}k' for s, n in a['params'].items())
    extra = ''.join(f'; {k} {v}' for k, v in a.get('notes', {}).items())
    print(f'  {name:{w}s} {a["family"]:17s} {a["causal"]:13s} {a["description"]}'
          f' [serves {", ".join(a["kinds"])}; {params}{extra}]')
  print('Tasks:')
  for name, t in info['tasks'].items():
    base = (', '.join(f'{k} {v:.3g}' for k, v in t['baselines'].items())
            or 'computed from the data')
    print(f'  {name:{w}s} {t["kind"]:9s} {t["description"]} '
          f'[baseline {base}; solved at {t["metric"]} {t["solved"]:.4g}]')
  print('Suites:')
  for name, s in info['suites'].items():
    print(f'  {name:{w}s} size {s["size"]:6s} {s["summary"]}')
  return 0


def cmd_run() -> int:
  from archbench.benchmarks.harness import model as model_lib
  from archbench.benchmarks.results import records
  from archbench.benchmarks.harness import runner
  from archbench.benchmarks import suites
  try:
    suite = suites.get(FLAGS.suite)
    cells = suite.cells(FLAGS.archs, FLAGS.tasks, FLAGS.size,
                        None if FLAGS.seed is None else [FLAGS.seed])
    for cell in cells:  # refuse a bad cell before spending minutes on the good ones
      runner.prepare(cell, build_task=False)  # a missing dataset fails its cells, not the run
  except model_lib.UsageError as e:
    raise Usage(str(e)) from None
  stamp = records.utc_now().replace(':', '').replace('-', '')
  out = pathlib.Path(FLAGS.out) if FLAGS.out else _REPO / 'results' / 'runs' / f'{suite.name}-{stamp}'
  logging.info('suite %s: %d cells -> %s', suite.name, len(cells), out)
  records = runner.run_suite(cells, out, suite=suite.name,
                             workers=FLAGS.workers or suite.workers)
  failed = [r for r in records if r['status'] != 'ok']
  print((out / 'summary.md').read_text())
  print(f'{len(records) - len(failed)} ok, {len(failed)} failed; results in {out}')
  return 1 if failed else 0


def cmd_report(args: list[str]) -> int:
  from archbench.benchmarks.results import report
  if len(args) != 1:
    raise Usage(f'report takes one directory; {USAGE}')
  out = pathlib.Path(args[0])
  if not (out / 'results.jsonl').is_file():
    raise Usage(f'no results.jsonl in {out}')
  records = report.write_summaries(out, plots=True)
  print((out / 'summary.md').read_text())
  print(f'{len(records)} records; wrote {out / "summary.md"} and {out / "summary.csv"}')
  return 0


def cmd_data(args: list[str]) -> int:
  """`data prepare NAME`: download and prepare a TFDS dataset (needs network and the
  `prepare` extra). Failures other than usage are one line and exit code 1."""
  from archbench.data import tfds_tasks
  valid = ', '.join(tfds_tasks.DATASETS)
  if len(args) != 2 or args[0] != 'prepare':
    raise Usage(f'data takes `prepare NAME` with NAME one of {valid}; {USAGE}')
  name = args[1]
  if name not in tfds_tasks.DATASETS:
    raise Usage(f'unknown dataset {name!r}; valid: {valid}')
  try:
    path, fresh = tfds_tasks.prepare(name)
  except tfds_tasks.PrepareError as e:  # e.g. TensorFlow is not installed
    print(f'archbench: error: {e}', file=sys.stderr)
    return 1
  except Exception as e:  # no network, a failed build: one line
    text = ' '.join(str(e).split())[:500]
    print(f'archbench: error: preparing {name} failed: {type(e).__name__}: {text}',
          file=sys.stderr)
    return 1
  sizes = ', '.join(f'{split} {n:,}' for split, n in tfds_tasks.split_sizes(name).items())
  print(f'{name}: {"prepared" if fresh else "already prepared"} in {path} ({sizes} examples)')
  return 0


def run(argv: list[str]) -> int:
  """Parse argv and run a command; returns the exit code."""
  try:
    try:
      rest = FLAGS(argv)[1:]
    except flags.Error as e:
      raise Usage(f'{e}. {USAGE}') from None
    if not rest or rest[0] not in COMMANDS:
      got = f'unknown command {rest[0]!r}' if rest else 'no command'
      raise Usage(f'{got}; valid: {", ".join(COMMANDS)}. {USAGE}')
    command, args = rest[0], rest[1:]
    if command not in ('report', 'data') and args:
      raise Usage(f'unexpected argument(s) {" ".join(args)}; {USAGE}')
    if FLAGS.data_dir:  # inherited by worker processes through the environment
      from archbench.data import tfds_tasks
      tfds_tasks.use_data_dir(FLAGS.data_dir)
    if command == 'list':
      return cmd_list()
    if command == 'run':
      return cmd_run()
    if command == 'data':
      return cmd_data(args)
    return cmd_report(args)
  except Usage as e:
    print(f'archbench: error: {e}', file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  flags.FLAGS.mark_as_parsed()  # our flags live in FLAGS above; absl's global set is unused
  logging.set_verbosity(logging.INFO)
  logging.use_absl_handler()
  for noisy in ('jax', 'absl.logging.jax'):  # backend probing at INFO is not progress
    std_logging.getLogger(noisy).setLevel(std_logging.WARNING)
  try:
    code = run(sys.argv if argv is None else argv)
  except BrokenPipeError:  # `archbench list | head`: the reader left, nothing to report
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
  sys.exit(code)
