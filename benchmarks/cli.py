"""archbench command line: `list`, `run`, `report` and `data prepare`. Intentionally short:
the work is done by config, runner, report and data.

Exit codes: 0 every cell ok, 1 some cell failed (or preparing a dataset failed), 2 bad
usage (one line on stderr, before any cell runs).
"""
from __future__ import annotations

import json
import logging as std_logging
import os
import pathlib
import sys
import time

from absl import flags, logging
from ml_collections import config_flags

DEFAULT_SUITE = 'quick'  # what `archbench run` runs


def make_flags(argv: list[str] | None = None) -> flags.FlagValues:
  """A fresh set of the CLI's flags for one command line (config_flags finds the
  --config.* overrides in the argv it is given, else in sys.argv)."""
  fv = flags.FlagValues()
  flags.DEFINE_string('suite', None, 'Built-in suite to run (default quick; see `archbench '
                      'list`).', flag_values=fv)
  config_flags.DEFINE_config_file(
      'config', None, 'A suite file of your own (a .py defining get_config()), instead of '
      '--suite. Any field of the suite is set with --config.<path>=<value>.',
      flag_values=fv, lock_config=True, sys_argv=argv)
  flags.DEFINE_multi_string('plugin', [], 'Python file or module registering your own '
                            'architectures, tasks, evaluators or report sections '
                            '(repeatable).', flag_values=fv)
  flags.DEFINE_list('archs', None, 'Only these architectures (comma-separated).',
                    flag_values=fv)
  flags.DEFINE_list('tasks', None, 'Only these tasks (comma-separated).', flag_values=fv)
  flags.DEFINE_string('size', None, 'Parameter budget (tiny, small, base, large): overrides '
                      'the suite\'s size.', flag_values=fv)
  flags.DEFINE_integer('seed', None, 'Run this seed instead of the suite\'s seeds.',
                       lower_bound=0, upper_bound=2**31 - 1, flag_values=fv)
  flags.DEFINE_string('out', None, 'Output directory (default ./results/runs/<suite>-<UTC>/).',
                      flag_values=fv)
  flags.DEFINE_integer('workers', None, 'Cells run at once (default: the suite\'s; timings '
                       'are only comparable with 1).', lower_bound=1, upper_bound=64,
                       flag_values=fv)
  flags.DEFINE_string('from_record', None, 'Re-run one recorded cell exactly: '
                      'RESULTS_JSONL:N (the N-th record, from 1).', flag_values=fv)
  flags.DEFINE_string('resume', None, 'Continue the killed run in this directory: recorded '
                      'cells are skipped, the cell in flight continues from its checkpoint.',
                      flag_values=fv)
  flags.DEFINE_bool('timing', None, 'Also judge step times (same machine only): on by '
                    'default for compare, off for reproduce DIR.', flag_values=fv)
  flags.DEFINE_bool('json', False, 'list: print JSON.', flag_values=fv)
  flags.DEFINE_bool('list', False, 'reproduce: list the reproductions of published results, '
                    'each at both sizes.', flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'Directory of prepared TFDS datasets (default: '
                      '$ARCHBENCH_DATA_DIR, else $TFDS_DATA_DIR, else ~/tensorflow_datasets).',
                      flag_values=fv)
  flags.DEFINE_string('compile_cache', None, 'Directory of JAX\'s persistent compilation '
                      'cache, so a second run skips most compilation (default: '
                      '$ARCHBENCH_COMPILE_CACHE, else ~/.cache/archbench/jax); "off" turns it '
                      'off.', flag_values=fv)
  return fv


FLAGS = make_flags()  # replaced by a fresh set each time run() parses a command line

COMMANDS = {
    'list': ('[--suite NAME] [--json] [--plugin P]',
             'Architectures, tasks and suites, each suite with its config paths; with '
             '--suite, every config path of that suite and its value.',
             ('suite', 'json', 'plugin', 'data_dir')),
    'run': ('[--suite NAME | --config PATH] [--config.PATH=VALUE ...] [flags]',
            'Run a suite (default quick) and write results.jsonl, summary.md, summary.csv, '
            'summary.tex, plots and report.html under --out.',
            ('suite', 'config', 'plugin', 'archs', 'tasks', 'size', 'seed', 'out', 'workers',
             'from_record', 'resume', 'data_dir', 'compile_cache')),
    'report': ('[--plugin P] DIR', 'Rebuild the summaries (Markdown, CSV, LaTeX), the plots '
               'and the HTML report of a run from DIR/results.jsonl (--plugin: its report '
               'sections too).', ('plugin',)),
    'compare': ('BASE NEW [--json] [--notiming]',
                'Compare two runs cell by cell, each difference against its tolerance (seed '
                'spread, timing windows); exit 1 when a cell got worse.', ('json', 'timing')),
    'reproduce': ('NAME | DIR | --list [--out OUT] [--workers N] [--timing]',
                  'Reproduce a published result (NAME, see --list): run it, then write and '
                  'print paper | archbench | difference | verdict. Or re-run the cells of a '
                  'run directory (e.g. results/quick-cpu) from their records and compare.',
                  ('list', 'out', 'workers', 'timing', 'plugin', 'compile_cache')),
    'env': ('[--json]', 'What this machine would record as provenance: CPU and its features, '
            'devices, XLA flags, matmul precision, versions, code version and commit.',
            ('json',)),
    'data': ('prepare NAME [--data_dir DIR]',
             'Download and prepare a TFDS dataset (needs network and the `prepare` extra).',
             ('data_dir',)),
}
USAGE = 'usage: archbench {' + ' | '.join(COMMANDS) + '} ...; archbench COMMAND --help'
# The config paths users need most, shown by `archbench run --help`.
COMMON_PATHS = (
    ('train.steps=N', 'optimiser steps of every cell'),
    ('train.lr=X', 'peak learning rate (AdamW, warm-up then cosine decay)'),
    ('train.batch_size=N', 'training batch size'),
    ('task.length=T', 'sequence length of every task that has one'),
    ('arch.hidden=N', 'a backbone field (here the RNNs\' width), for every architecture '
     'that has it; overrides the parameter budget'),
    ('seeds=0,1,2', 'the seeds to run'),
    ('tasks.copy.arch_train.gru.lr=X', 'one task\'s, or one architecture\'s, own setting'),
)
EXAMPLE = ('archbench run --archs lstm --tasks adding --config.train.steps=30 '
           '--config.task.length=64 --config.arch.hidden=32 --out /tmp/lstm-adding')


class Usage(Exception):
  pass


# ---------------------------------------------------------------------------------------
# Help.

def help_text(command: str | None) -> str:
  if command not in COMMANDS:
    lines = [USAGE, '', 'Commands:']
    lines += [f'  {name:9s} {doc}' for name, (_, doc, _) in COMMANDS.items()]
    lines += ['', f'Example: {EXAMPLE}', 'Exit codes: 0 all cells ok, 1 a cell failed (compare, '
              'reproduce: a cell got worse), 2 bad usage.']
    return '\n'.join(lines)
  args, doc, names = COMMANDS[command]
  lines = [f'usage: archbench {command} {args}', '', doc]
  if names:
    lines += ['', 'Flags:']
    for name in names:
      flag = FLAGS[name]
      lines.append(f'  --{name:12s} {" ".join(flag.help.split())}')
  if command == 'run':
    lines += ['', 'Config overrides (ml_collections syntax; `archbench list --suite NAME` '
              'shows every path and its value):']
    lines += [f'  --config.{path:32s} {doc}' for path, doc in COMMON_PATHS]
    lines += ['  Global overrides (train.*, task.*, arch.*) win over the suite\'s per-task '
              'and per-architecture settings.', '', f'Example:\n  {EXAMPLE}']
  return '\n'.join(lines)


# ---------------------------------------------------------------------------------------
# Parsing: plug-ins first (a suite may name their architectures), then the suite file,
# then every flag and --config.* override.

def _flag_values(argv: list[str], name: str) -> list[str]:
  """Values of --name=V and --name V in argv (before absl parses it)."""
  values = []
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      values.append(arg.split('=', 1)[1])
    elif arg == f'--{name}' and i + 1 < len(argv):
      values.append(argv[i + 1])
  return values


def _with_suite_file(argv: list[str], command: str | None) -> list[str]:
  """Insert --config=<the built-in suite's file> unless a suite file was given."""
  from archbench.benchmarks import config as config_lib
  files = _flag_values(argv, 'config')
  suites = _flag_values(argv, 'suite')
  if files and suites:
    raise Usage('give --suite NAME or --config PATH, not both')
  if files or command not in ('run', 'list'):
    if files:  # loaded here too: config_flags would reuse a module of the same name
      if not pathlib.Path(files[-1].split(':')[0]).is_file():
        raise Usage(f'--config {files[-1]}: no such suite file')
      try:
        config_lib.load(files[-1])
      except Exception as e:
        raise Usage(_suite_file_error(files[-1], e)) from None
    return argv
  if command == 'list' and not suites:
    return argv
  try:
    path = config_lib.suite_path(suites[-1] if suites else DEFAULT_SUITE)
  except config_lib.UsageError as e:
    raise Usage(str(e)) from None
  return [argv[0], f'--config={path}', *argv[1:]]


def _suite_file_error(file: str, error: Exception) -> str:
  from archbench.benchmarks.core import one_line
  return f'--config {file} failed to load: {one_line(error)}'


def _explain_parse_error(argv: list[str], error: Exception) -> str:
  """One line for a flag or --config.* override that absl/config_flags refused: the bad
  key and the valid ones there, or the bad value and the type expected."""
  from archbench.benchmarks import config as config_lib
  files = _flag_values(argv, 'config')
  suite = config_lib.load(files[-1]) if files else None  # loads: _with_suite_file checked
  for arg in argv:
    if suite is None or not arg.startswith('--config.'):
      continue
    path, _, value = arg[len('--config.'):].partition('=')
    node, walked = suite, []
    for key in path.split('.'):
      if not hasattr(node, 'keys') or key not in node.keys():
        where = f'under config.{".".join(walked)}' if walked else 'at the top'
        valid = ', '.join(node.keys()) if hasattr(node, 'keys') else 'none (a leaf)'
        return f'unknown config key config.{path}; valid keys {where}: {valid}'
      parent, node, walked = node, node[key], [*walked, key]
    if value and value in str(error):
      kind = parent.get_ref(walked[-1]).get_type()
      return f'bad value for config.{path}: {value!r} (expected {kind.__name__})'
  return f'{" ".join(str(error).split())}. {USAGE}'


def parse(argv: list[str]) -> tuple[str, list[str]]:
  """Load plug-ins, parse flags and config overrides; returns (command, its arguments)."""
  from archbench.benchmarks import plugins
  commands = [a for a in argv[1:] if a in COMMANDS]
  command = commands[0] if commands else None
  try:
    plugins.load_all(_flag_values(argv, 'plugin'))
  except plugins.UsageError as e:
    raise Usage(str(e)) from None
  argv = _with_suite_file(argv, command)
  global FLAGS
  FLAGS = make_flags(argv)
  try:
    rest = FLAGS(argv)[1:]
  except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as e:
    raise Usage(_explain_parse_error(argv, e)) from None
  except Exception as e:  # a suite file's own bug: whose it is, in one line
    raise Usage(_suite_file_error(_flag_values(argv, 'config')[-1], e)) from None
  if not rest or rest[0] not in COMMANDS:
    got = f'unknown command {rest[0]!r}' if rest else 'no command'
    raise Usage(f'{got}; valid: {", ".join(COMMANDS)}. {USAGE}')
  return rest[0], rest[1:]


# ---------------------------------------------------------------------------------------
# Commands.

def _describe() -> dict:
  """Everything `list` shows, as plain data."""
  from archbench import archs, data
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.harness import evaluators, model as model_lib
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
        'depth_fields': list(spec.depth_fields),
        'token_by_token': spec.decoding is not None,
        'notes': spec.details(spec.config('small')) if spec.details else {},
    }
  task_info = {}
  for name, spec in task_specs.items():
    entry = data.get(name)
    task_info[name] = {
        'description': entry.description, 'kind': spec.kind, 'metric': spec.metric,
        'baselines': spec.baselines, 'solved': spec.solved,
        'causal': spec.causal, 'defaults': entry.defaults, 'reads_data': entry.reads_data}
  suite_info = {}
  for name in config_lib.suite_files():
    suite = config_lib.load(name)
    suite_info[name] = {'summary': config_lib.summary(suite), 'size': suite.size,
                        'tasks': list(suite.tasks.keys()), 'doc': suite.doc,
                        'config': config_lib.flatten(suite)}
  return {'sizes': archs.SIZES, 'archs': arch_info, 'tasks': task_info, 'suites': suite_info,
          'evaluators': evaluators.describe()}


def _compact_paths(paths) -> str:
  """{'tasks.adding.params.length', ...} -> 'name, ..., tasks.{adding,copy}.{params,...}.*'."""
  from archbench.benchmarks import config as config_lib
  tasks = list(dict.fromkeys(p.split('.')[1] for p in paths if p.startswith('tasks.')))
  top = [p for p in paths if '.' not in p and p != 'doc']
  plan = ','.join(config_lib.PLAN_FIELDS)
  return (f'{", ".join(top)}, tasks.{{{",".join(tasks)}}}.{{{plan}}}.*, '
          f'{", ".join(s + ".*" for s in ("execution", *config_lib.GLOBAL_SECTIONS))}')


def cmd_list() -> int:
  from archbench.benchmarks.harness import evaluators as evaluators_lib
  info = _describe()
  if FLAGS.config is not None:  # --suite NAME: every path of that suite, with its value
    suite = FLAGS.config
    from archbench.benchmarks import config as config_lib
    if FLAGS.json:
      print(json.dumps(config_lib.flatten(suite), indent=2, default=str))
      return 0
    print(f'{suite.name}: {config_lib.summary(suite)}\n')
    for path, value in config_lib.flatten(suite).items():
      if path != 'doc':
        print(f'  --config.{path}={value!r}')
    return 0
  if FLAGS.json:
    print(json.dumps(info, indent=2, default=str))
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
  print('Suites (config paths: set any with --config.<path>=<value>; '
        '`archbench list --suite NAME` shows each value):')
  for name, s in info['suites'].items():
    print(f'  {name:{w}s} size {s["size"]:6s} {s["summary"]}')
    print(f'  {"":{w}s} config: {_compact_paths(s["config"])}')
  print('\n'.join(evaluators_lib.list_lines(info['evaluators'], w)))
  return 0


def _out_dir(name: str) -> pathlib.Path:
  """--out, checked before any cell runs; default ./results/runs/<suite>-<UTC time>/."""
  from archbench.benchmarks.results import records
  if FLAGS.out:
    out = pathlib.Path(FLAGS.out)
  else:
    stamp = records.utc_now().replace(':', '').replace('-', '')
    out = pathlib.Path.cwd() / 'results' / 'runs' / f'{name}-{stamp}'
  if out.exists() and not out.is_dir():
    raise Usage(f'--out {out} is a file; give a directory')
  try:
    out.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise Usage(f'--out {out}: cannot create it ({e.strerror})') from None
  if not os.access(out, os.W_OK):
    raise Usage(f'--out {out}: not writable')
  return out


def _cells_to_run():
  """(suite name, workers, cells) from --from_record or the suite config and filters."""
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.results import records
  if FLAGS.from_record:
    path, _, line = FLAGS.from_record.rpartition(':')
    if not path or not line.isdigit():
      raise Usage(f'--from_record takes RESULTS_JSONL:N, got {FLAGS.from_record!r}')
    found = records.load_records(pathlib.Path(path)) if pathlib.Path(path).is_file() else None
    if found is None:
      raise Usage(f'--from_record: no file {path}')
    if not 1 <= int(line) <= len(found):
      raise Usage(f'--from_record: {path} holds records 1..{len(found)}, not {line}')
    record = found[int(line) - 1]
    return record.get('suite', 'record'), 1, [records.cell_of(record)]
  for name in ('archs', 'tasks', 'size'):
    if FLAGS[name].present and not getattr(FLAGS, name):
      raise Usage(f'--{name} was given an empty value; name at least one (see archbench list)')
  suite = FLAGS.config
  cells = config_lib.cells(suite, FLAGS.archs, FLAGS.tasks, FLAGS.size,
                           None if FLAGS.seed is None else [FLAGS.seed])
  return suite.name, FLAGS.workers or suite.workers, cells


def _resume_plan():
  """(suite name, workers, execution, run_id, cells) of the run --resume continues."""
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.harness import suite as suite_lib
  from archbench.benchmarks.results import records
  for name in ('archs', 'tasks', 'size', 'seed', 'from_record', 'out', 'suite'):
    if FLAGS[name].present:
      raise Usage(f'--resume continues a run as it was planned; drop --{name}')
  out = pathlib.Path(FLAGS.resume)
  try:
    plan = suite_lib.read_plan(out)
  except UsageError as e:
    raise Usage(str(e)) from None
  if plan['code_version'] != records.code_version():
    raise Usage(f'{out} was run by other code (version {plan["code_version"]}, this is '
                f'{records.code_version()}): resuming would mix the two; start a new run '
                'and compare them with archbench compare')
  return out, plan


def cmd_run() -> int:
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.harness import executors, runner, suite as suite_lib
  from archbench.benchmarks.progress import Progress
  from archbench.benchmarks.results import records as records_lib
  from archbench.benchmarks.results import tensorboard_events
  if FLAGS.resume:
    out, plan = _resume_plan()
    name, cells, run_id = plan['suite'], plan['cells'], plan['run_id']
    workers, execution = FLAGS.workers or plan['workers'], plan['execution']
    dispatch = plan.get('dispatch') or {}  # the executor etc. the run was planned with
  else:
    try:
      name, workers, cells = _cells_to_run()
      for cell in cells:  # refuse a bad cell before spending minutes on the good ones
        runner.prepare(cell, build_task=False)  # a missing dataset fails its cells only
      from_suite = FLAGS.config is not None
      execution = config_lib.execution(FLAGS.config) if from_suite else \
          runner.DEFAULT_EXECUTION
      dispatch = config_lib.executor(FLAGS.config) if from_suite else {}
      if from_suite and FLAGS.config.get('tensorboard'):
        dispatch['tensorboard'] = True
        tensorboard_events.require()
      # Ray or tensorboardX missing is refused here, before --out is made.
      executors.Executor.resolve(dispatch.get('executor', 'local'), FLAGS.workers or workers)
    except UsageError as e:
      raise Usage(str(e)) from None
    out, run_id = _out_dir(name), None
  logging.info('suite %s: %d cells -> %s', name, len(cells), out)
  try:
    suite_lib.run_suite(cells, out, suite=name, workers=FLAGS.workers or workers,
                        progress=Progress.for_terminal(len(cells)), execution=execution,
                        run_id=run_id, resume=bool(FLAGS.resume), **dispatch)
  except UsageError as e:  # an executor that cannot start (Ray not installed, no cluster)
    raise Usage(str(e)) from None
  records = records_lib.load_records(out / 'results.jsonl')
  failed = [r for r in records if r['status'] != 'ok']
  print((out / 'summary.md').read_text())
  print(f'{len(records) - len(failed)} ok, {len(failed)} failed; results in {out}')
  return 1 if failed else 0


def cmd_compare(args: list[str]) -> int:
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.results import compare
  if len(args) != 2:
    raise Usage(f'compare takes two runs, BASE and NEW (directories or results.jsonl); {USAGE}')
  try:
    result = compare.compare(compare.load(args[0]), compare.load(args[1]),
                             timing=FLAGS.timing is not False)
  except UsageError as e:
    raise Usage(str(e)) from None
  print(json.dumps(compare.to_json(result), indent=1) if FLAGS.json
        else compare.to_markdown(result))
  return result.exit_code


def cmd_reproduce(args: list[str]) -> int:
  """`reproduce --list`, `reproduce NAME` (a published result) or `reproduce DIR` (a
  recorded run)."""
  if FLAGS.list:
    if args:
      raise Usage(f'reproduce --list takes no argument; {USAGE}')
    return cmd_reproductions()
  if len(args) != 1:
    raise Usage('reproduce takes one reproduction NAME (archbench reproduce --list) or one '
                f'run directory (e.g. results/quick-cpu); {USAGE}')
  from archbench.benchmarks import config as config_lib
  target = pathlib.Path(args[0])
  if args[0] not in config_lib.reproductions() and (target.is_dir() or target.suffix == '.jsonl'):
    return _rerun_and_compare(args[0])
  return _reproduce(args[0])  # a known name wins over a directory of the same name


def cmd_reproductions() -> int:
  """Every reproduction at both sizes: what it reproduces, its cells and its runtime (the
  cpu size's measured, the full size's estimated from the cpu run's step rates)."""
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.results import estimate, reproduction
  lines = ['| reproduction | size | what | cells | runtime |', '|---|---|---|---|---|']
  for name, (_, size) in config_lib.reproductions().items():
    config = config_lib.load_reproduction(name)
    rep, cells = config.reproduction, config_lib.cells(config)
    runtime = rep.runtime
    results = pathlib.Path(__file__).resolve().parent.parent / 'results'
    measured = results / name / reproduction.FILE_JSON
    if size == 'cpu' and measured.is_file():
      run = json.loads(measured.read_text())
      if run.get('wall_s'):
        runtime = (f'measured: {reproduction.duration(run["wall_s"])} on {run.get("machine")} '
                   f'(results/{name}/)')
    rates_dir = results / f'{name}-cpu'
    if size == 'full' and (rates_dir / 'results.jsonl').is_file():
      rows = estimate.estimate(config, estimate.measured_rates(rates_dir))
      cpu_s = sum(r['cpu_s'] or 0.0 for r in rows.values())
      gpu_s = sum(r['gpu_s'] for r in rows.values())
      runtime = (f'estimate, training only: about {cpu_s / 3600:,.0f} h on the 2-core CPU '
                 f'(step rates of '
                 f'results/{name}-cpu), about {gpu_s / 3600:,.1f} h on one GPU '
                 f'({estimate.GPU().name}, assumed, see results/estimate.py)')
    lines.append(f'| {name} | {size} | {rep.title} | {len(cells)} | {runtime} |')
  print('\n'.join(lines))
  print('\nRun one: archbench reproduce NAME [--out DIR]; its table lands in '
        'DIR/reproduction.md')
  return 0


def _reproduce(name: str) -> int:
  """Run a reproduction and judge it against the paper (results/reproduction.py)."""
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.harness import runner, suite as suite_lib
  from archbench.benchmarks.progress import Progress
  from archbench.benchmarks.results import records as records_lib
  from archbench.benchmarks.results import report, reproduction
  try:
    config = config_lib.load_reproduction(name)
    cells = config_lib.cells(config)
    for cell in cells:
      runner.prepare(cell, build_task=False)
    spec = reproduction.plain(config.reproduction)
  except UsageError as e:
    raise Usage(str(e)) from None
  out = _out_dir(name)
  if (out / 'results.jsonl').exists():
    raise Usage(f'--out {out} already holds a run (results.jsonl); give a new directory, or '
                f'continue it with archbench run --resume {out}')
  # The spec first, so that a killed reproduction, resumed with `archbench run --resume`,
  # is judged by `archbench report DIR`.
  (out / reproduction.FILE_JSON).write_text(json.dumps({'reproduction': spec}, indent=1))
  started = time.monotonic()
  suite_lib.run_suite(cells, out, suite=name, workers=FLAGS.workers or 1,
                      progress=Progress.for_terminal(len(cells)),
                      execution=config_lib.execution(config))
  records = records_lib.load_records(out / 'results.jsonl')
  reproduction.write(out, spec, records, wall_s=time.monotonic() - started)
  report.write_summaries(out, plots=True)  # again: report.html shows the verdicts
  print((out / reproduction.FILE_MD).read_text())
  failed = sum(r['status'] != 'ok' for r in records)
  print(f'{len(records) - failed} ok, {failed} failed; table in {out / reproduction.FILE_MD}')
  return 1 if failed else 0


def _rerun_and_compare(path: str) -> int:
  """Re-run a recorded run's cells and compare: every cell `same` or `within noise` is a
  reproduction; exit 1 when a cell got worse beyond its tolerance. Step times are judged
  only with --timing: a later run, even on the same machine, varies beyond its own timing
  windows (up to 1.6x measured on a shared 2-core VM), so they would flag noise."""
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.harness import runner, suite as suite_lib
  from archbench.benchmarks.progress import Progress
  from archbench.benchmarks.results import compare, records, report
  try:
    base = compare.load(path)
    cells = list({c.digest: c for c in map(records.cell_of, base)}.values())
    for cell in cells:
      runner.prepare(cell, build_task=False)
  except UsageError as e:
    raise Usage(str(e)) from None
  suite = f'reproduce-{base[0].get("suite", "run")}'
  out = _out_dir(suite)
  suite_lib.run_suite(cells, out, suite=suite, workers=FLAGS.workers or 1,
                      progress=Progress.for_terminal(len(cells)))
  result = compare.compare(base, records.load_records(out / 'results.jsonl'),
                           timing=bool(FLAGS.timing))
  text = compare.to_markdown(result)
  (out / 'comparison.md').write_text(text)
  report.write_summaries(out, plots=True)  # again: report.html shows the comparison
  print(text)
  print(f'{len(cells)} cells re-run from {path}; results and comparison.md in {out}')
  return result.exit_code


def cmd_env() -> int:
  from archbench.benchmarks.results import records
  env = records.environment()
  if FLAGS.json:
    print(json.dumps(env, indent=1))
    return 0
  w = max(map(len, env))
  for key, value in env.items():
    print(f'{key:{w}s}  {records.env_text(value)}')
  return 0


def cmd_report(args: list[str]) -> int:
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.results import records as records_lib
  from archbench.benchmarks.results import report, reproduction
  if len(args) != 1:
    raise Usage(f'report takes one directory; {USAGE}')
  out = pathlib.Path(args[0])
  if not (out / 'results.jsonl').is_file():
    raise Usage(f'no results.jsonl in {out}')
  found = records_lib.load_records(out / 'results.jsonl')
  if not found:
    raise Usage(f'{out / "results.jsonl"} holds no readable record')
  try:
    spec = reproduction.saved(out)
    if spec is not None:  # a reproduction: its verdicts again, before report.html shows them
      reproduction.write(out, spec, found)
  except UsageError as e:
    raise Usage(str(e)) from None
  records = report.write_summaries(out, plots=True)
  print((out / 'summary.md').read_text())
  also = ', reproduction.md' if spec is not None else ''
  print(f'{len(records)} records; wrote summary.md, summary.csv, summary.tex, report.html{also} '
        f'and the plots in {out}')
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
  args = argv[1:]
  if {'-h', '--help', '-help', '--helpfull'} & set(args) or args[:1] == ['help']:
    named = [a for a in args if a in COMMANDS]
    print(help_text(named[0] if named else None))
    return 0
  try:
    command, args = parse(argv)
    if command not in ('report', 'data', 'compare', 'reproduce') and args:
      raise Usage(f'unexpected argument(s) {" ".join(args)}; {USAGE}')
    if FLAGS.data_dir:  # inherited by worker processes through the environment
      from archbench.data import tfds_tasks
      tfds_tasks.use_data_dir(FLAGS.data_dir)
    if command == 'list':
      return cmd_list()
    if command in ('run', 'reproduce'):
      from archbench.benchmarks.measure import timing
      timing.use_compile_cache(FLAGS.compile_cache or timing.default_compile_cache())
    if command == 'run':
      return cmd_run()
    if command == 'data':
      return cmd_data(args)
    if command == 'compare':
      return cmd_compare(args)
    if command == 'reproduce':
      return cmd_reproduce(args)
    if command == 'env':
      return cmd_env()
    return cmd_report(args)
  except Usage as e:
    print(f'archbench: error: {e}', file=sys.stderr)
    return 2


def _join_hosts() -> int:
  """A multi-host launch (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or
  ARCHBENCH_DISTRIBUTED=1 on SLURM/Open MPI/Kubernetes/TPU) joins the other hosts before
  anything touches a device; 0 when joined or alone, 2 for an incomplete setting."""
  from archbench.benchmarks.core import UsageError
  from archbench.benchmarks.harness import parallel
  try:
    parallel.initialize_distributed()
  except UsageError as e:
    print(f'archbench: error: {e}', file=sys.stderr)
    return 2
  return 0


def main(argv: list[str] | None = None) -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  flags.FLAGS.mark_as_parsed()  # our flags live in FLAGS above; absl's global set is unused
  logging.set_verbosity(logging.INFO)
  logging.use_absl_handler()
  for noisy in ('jax', 'absl.logging.jax'):  # backend probing at INFO is not progress
    std_logging.getLogger(noisy).setLevel(std_logging.WARNING)
  try:
    code = _join_hosts() or run(sys.argv if argv is None else argv)
  except BrokenPipeError:  # `archbench list | head`: the reader left, nothing to report
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
  sys.exit(code)
