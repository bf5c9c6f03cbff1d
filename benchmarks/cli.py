"""archbench command line. It parses and dispatches: each command takes only its own flags
(COMMANDS), refuses any other, and calls the flow that does the work (benchmarks/flows/,
the results layer, data/); a flow's UsageError is one line on stderr and exit code 2.

Exit codes: 0 every cell ok, 1 some cell failed (compare, reproduce: a cell got worse;
data prepare: preparing failed), 2 bad usage (before any cell runs).
"""
from __future__ import annotations

import json
import logging as std_logging
import os
import pathlib
import sys

from absl import flags, logging

import archbench
from archbench.benchmarks.commands import (COMMANDS, USAGE, flag_values, help_text,
                                           make_flags, refuse_foreign_flags, suite_file_error,
                                           with_config_file)
from archbench.benchmarks.core import UsageError, one_line


def parse(argv: list[str]) -> tuple[str, flags.FlagValues, list[str]]:
  """(command, its parsed flags, its arguments); UsageError if bad. The command's own flags
  only; plug-ins first (a suite may name their architectures), then the suite or
  reproduction file, then every flag and override."""
  from archbench.benchmarks import plugins
  named = [a for a in argv[1:] if a in COMMANDS]
  if not named:
    got = [a for a in argv[1:] if not a.startswith('-')]
    raise UsageError(f'{f"unknown command {got[0]!r}" if got else "no command"}; valid: '
                     f'{", ".join(COMMANDS)}. {USAGE}')
  command = named[0]
  refuse_foreign_flags(argv, command)
  if 'plugin' in COMMANDS[command].flags:
    plugins.load_all(flag_values(argv, 'plugin'))
  argv = with_config_file(argv, command)
  fv = make_flags(command, argv)
  try:
    rest = fv(argv)[1:]
  except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as e:
    from archbench.benchmarks import config as config_lib
    files = flag_values(argv, 'config')  # loads: with_config_file checked it
    suite = config_lib.load(files[-1]) if files else None
    raise UsageError(config_lib.explain_override_error(suite, argv, e) or
                     f'{" ".join(str(e).split())}. {USAGE}') from None
  except Exception as e:  # a suite file's own bug: whose it is, in one line
    raise UsageError(suite_file_error(flag_values(argv, 'config')[-1], e)) from None
  if rest[:1] != [command]:
    raise UsageError(f'unknown command {(rest or [""])[0]!r}; valid: {", ".join(COMMANDS)}. '
                     f'{USAGE}')
  if rest[1:] and command not in ('report', 'compare', 'reproduce', 'data', 'claims'):
    raise UsageError(f'unexpected argument(s) {" ".join(rest[1:])}; {USAGE}')
  return command, fv, rest[1:]


def _drop(fv: flags.FlagValues, names, why: str) -> None:
  """Refuse the flags among `names` that were given: `why` they do not apply."""
  for name in names:
    if fv[name].present:
      raise UsageError(f'{why}; drop --{name}')


def _print_run(records, table: pathlib.Path, where: str) -> int:
  """A finished run's table and tally; exit code 1 when a cell failed."""
  failed = sum(r['status'] != 'ok' for r in records)
  print(table.read_text())
  print(f'{len(records) - failed} ok, {failed} failed; {where}')
  return 1 if failed else 0


# ---------------------------------------------------------------------------------------
# Commands: each turns its flags into a flow's arguments and prints what the flow returns.

def cmd_list(fv, args) -> int:
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.flows import catalog
  if fv.config is not None:  # --suite or --config: every path of that suite, with its value
    print(json.dumps(config_lib.flatten(fv.config), indent=2, default=str) if fv.json
          else catalog.suite_text(fv.config))
  else:
    print(json.dumps(catalog.describe(), indent=2, default=str) if fv.json
          else catalog.text(catalog.describe()))
  return 0


def _refuse_empty(fv) -> None:
  for name in ('archs', 'tasks', 'size'):
    if fv[name].present and not fv[name].value:
      raise UsageError(f'--{name} was given an empty value; name at least one (see archbench '
                       'list)')


def cmd_run(fv, args) -> int:
  from archbench.benchmarks.flows import run as run_flow
  _refuse_empty(fv)
  if fv.resume:
    _drop(fv, ('archs', 'tasks', 'size', 'seed', 'from_record', 'out', 'suite', 'tuned',
               'reuse'), '--resume continues a run as it was planned')
    plan, out = run_flow.plan_resume(fv.resume, fv.workers), pathlib.Path(fv.resume)
  else:
    if fv.from_record:
      _drop(fv, ('archs', 'tasks', 'size', 'seed', 'suite', 'tuned', 'reuse'), '--from_record '
            'runs one recorded cell as it was')
      plan = run_flow.plan_record(fv.config, fv.from_record, fv.workers)
    else:
      plan = run_flow.plan_suite(fv.config, fv.archs, fv.tasks, fv.size, fv.seed, fv.workers,
                                 fv.tuned, fv.reuse)
    out = run_flow.out_dir(fv.out, plan.name)
  found = run_flow.execute(plan, out)
  reused = sum('reused_from' in (r.get('ran_on') or {}) for r in found)
  where = f'results in {out}' + (f'; {reused} of {len(found)} cells reused from '
                                 f'{", ".join(plan.reuse)}' if plan.reuse else '')
  return _print_run(found, out / 'summary.md', where)


def cmd_tune(fv, args) -> int:
  from archbench.benchmarks.flows import run as run_flow
  from archbench.benchmarks.flows import tune as tune_flow
  _refuse_empty(fv)
  if fv.resume:
    _drop(fv, ('archs', 'tasks', 'size', 'seed', 'out', 'suite'), '--resume continues a '
          'tuning run as it was planned')
    plan, out = tune_flow.plan_resume(fv.resume, fv.workers), pathlib.Path(fv.resume)
  else:
    plan = tune_flow.plan(fv.config, fv.archs, fv.tasks, fv.size, fv.seed, fv.workers)
    out = run_flow.out_dir(fv.out, f'{plan.final.name}-tuning')
  doc, records = tune_flow.execute(plan, out)
  print(tune_flow.selection_text(doc))
  return _print_run(records, out / 'summary.md', f'tuning in {out / "tuning.json"}, the '
                    f'selection\'s results in {out}')


def cmd_compare(fv, args) -> int:
  from archbench.benchmarks.results import compare
  if len(args) != 2:
    raise UsageError(f'compare takes two runs, BASE and NEW (directories or results.jsonl); '
                     f'{USAGE}')
  result = compare.compare(compare.load(args[0]), compare.load(args[1]),
                           timing=fv.timing is not False)
  print(json.dumps(compare.to_json(result), indent=1) if fv.json
        else compare.to_markdown(result))
  return result.exit_code


def cmd_reproduce(fv, args) -> int:
  """`reproduce --list`, `reproduce NAME` (a published result) or `reproduce DIR` (a
  recorded run); a known NAME wins over a directory of the same name."""
  from archbench.benchmarks import config as config_lib
  from archbench.benchmarks.flows import reproduce
  if fv.list:
    if args:
      raise UsageError(f'reproduce --list takes no argument; {USAGE}')
    _drop(fv, ('archs', 'tasks', 'seed', 'out', 'workers', 'timing', 'tuned'), 'reproduce '
          '--list runs nothing')
    print(reproduce.listing(pathlib.Path(fv.results)))
    print('\nRun one: archbench reproduce NAME [--out DIR]; its table lands in '
          'DIR/reproduction.md')
    return 0
  _drop(fv, ('results',), '--results is read by reproduce --list only')
  if len(args) != 1:
    raise UsageError('reproduce takes one reproduction NAME (archbench reproduce --list) or '
                     f'one run directory (e.g. results/quick-cpu); {USAGE}')
  filters = {'archs': fv.archs, 'tasks': fv.tasks, 'seed': fv.seed, 'workers': fv.workers}
  if fv.config is None:  # not a reproduction's name: a run directory, or a mistyped name
    target = pathlib.Path(args[0])
    if not (target.is_dir() or target.suffix == '.jsonl'):
      config_lib.load_reproduction(args[0])  # raises: unknown, with the valid names
    _drop(fv, ('tuned',), 'reproduce DIR re-runs the recorded cells as they were')
    out, result, cells = reproduce.rerun(args[0], fv.out, timing=bool(fv.timing), **filters)
    print((out / 'comparison.md').read_text())
    print(f'{len(cells)} cells re-run from {args[0]}; results and comparison.md in {out}')
    return result.exit_code
  _drop(fv, ('timing',), 'reproduce NAME judges against the paper, not step times')
  out, records = reproduce.reproduce(args[0], fv.config, fv.out, tuned=fv.tuned, **filters)
  return _print_run(records, out / 'reproduction.md', f'table in {out / "reproduction.md"}')


def cmd_claims(fv, args) -> int:
  """`claims --list`, `claims [NAME ...]` (run and judge) or `claims --resume DIR`."""
  from archbench.benchmarks.flows import claims
  if fv.list:
    _drop(fv, ('out', 'workers', 'resume'), 'claims --list runs nothing')
    if fv.config is not None and fv.config.to_dict() != claims.run_config().to_dict():
      raise UsageError('claims --list runs nothing; drop --config')
    if args:
      raise UsageError(f'claims --list takes no claim name; {USAGE}')
    print(claims.listing(pathlib.Path(fv.results), fv.size))
    print('\nRun them: archbench claims [NAME ...] [--size cpu|full] [--out DIR]; the verdicts '
          'land in DIR/claims.md')
    return 0
  _drop(fv, ('results',), '--results is read by claims --list only')
  if fv.resume:
    _drop(fv, ('size', 'out'), '--resume continues a claims study as it was planned')
    if args:
      raise UsageError('--resume continues the claims a study was planned with; drop the '
                       'claim names')
    out, judged, records = claims.resume(fv.resume, fv.workers)
  else:
    out, judged, records = claims.run(fv.size or 'cpu', args or None, fv.out, fv.workers,
                                      fv.config)
  from archbench.benchmarks.results import claims as judging
  print(judging.verdict_table(judged))
  failed = sum(r['status'] != 'ok' for r in records)
  print(f'{len(records) - failed} cells ok, {failed} failed; verdicts and evidence in '
        f'{out / judging.FILE_MD}')
  return 1 if failed else 0


def cmd_estimate(fv, args) -> int:
  from archbench.benchmarks.flows import estimate
  print(estimate.text(fv.config, fv.rates))
  return 0


def cmd_env(fv, args) -> int:
  from archbench.benchmarks.flows import run as run_flow
  print(run_flow.environment_text(fv.json))
  return 0


def cmd_report(fv, args) -> int:
  from archbench.benchmarks.flows import report
  if not args:
    raise UsageError(f'report takes a run directory, or several with --out; {USAGE}')
  if fv.out is not None:  # several runs (or one, copied) as one table
    out = pathlib.Path(fv.out)
    records, notes = report.merged(args, out)
    print((out / 'summary.md').read_text())
    print('\n'.join(notes))
    print(f'{len(records)} records from {len(args)} run(s); wrote results.jsonl, merged.json, '
          f'summary.md, summary.csv, summary.tex, report.html and the plots in {out}')
    return 0
  if len(args) != 1:
    raise UsageError(f'report takes one directory, or several with --out DIR to merge them '
                     f'into; {USAGE}')
  out = pathlib.Path(args[0])
  records, is_reproduction = report.rebuild(out)
  print((out / 'summary.md').read_text())
  also = ', reproduction.md' if is_reproduction else ''
  print(f'{len(records)} records; wrote summary.md, summary.csv, summary.tex, report.html{also} '
        f'and the plots in {out}')
  return 0


def cmd_data(fv, args) -> int:
  """`data prepare NAME`; a failure other than usage is one line and exit code 1."""
  from archbench.data import speech, tfds_tasks
  valid = ', '.join([*tfds_tasks.DATASETS, speech.NAME])
  if len(args) != 2 or args[0] != 'prepare':
    raise UsageError(f'data takes `prepare NAME` with NAME one of {valid}; {USAGE}')
  if args[1] not in [*tfds_tasks.DATASETS, speech.NAME]:
    raise UsageError(f'unknown dataset {args[1]!r}; valid: {valid}')
  synthesised = args[1] == speech.NAME
  try:
    path, fresh = speech.prepare() if synthesised else tfds_tasks.prepare(args[1])
  except Exception as e:  # TensorFlow or espeak-ng missing, no network, a failed build
    why = e if isinstance(e, tfds_tasks.PrepareError) else \
        f'preparing {args[1]} failed: {one_line(e, 500)}'
    print(f'archbench: error: {why}', file=sys.stderr)
    return 1
  if synthesised:
    sizes = speech.describe(path)
  else:
    sizes = ', '.join(f'{split} {n:,}' for split, n in tfds_tasks.split_sizes(args[1]).items())
    sizes += ' examples'
  print(f'{args[1]}: {"prepared" if fresh else "already prepared"} in {path} ({sizes})')
  return 0


HANDLERS = {'list': cmd_list, 'run': cmd_run, 'tune': cmd_tune, 'report': cmd_report,
            'compare': cmd_compare,
            'reproduce': cmd_reproduce, 'claims': cmd_claims, 'estimate': cmd_estimate, 'env': cmd_env,
            'data': cmd_data}


def run(argv: list[str]) -> int:
  """Parse argv and run a command; returns the exit code."""
  args = argv[1:]
  if args == ['--version']:  # alone: a command's flags are its own (commands.py)
    print(f'archbench {archbench.__version__}')
    return 0
  if {'-h', '--help', '-help', '--helpfull'} & set(args) or args[:1] == ['help']:
    named = [a for a in args if a in COMMANDS]
    print(help_text(named[0] if named else None))
    return 0
  try:
    command, fv, args = parse(argv)
    if 'data_dir' in fv and fv.data_dir:  # inherited by worker processes via the environment
      from archbench.data import tfds_tasks
      tfds_tasks.use_data_dir(fv.data_dir)
    if 'compile_cache' in fv:
      from archbench.benchmarks.measure import timing
      timing.use_compile_cache(fv.compile_cache or timing.default_compile_cache())
    return HANDLERS[command](fv, args)
  except UsageError as e:
    print(f'archbench: error: {e}', file=sys.stderr)
    return 2


def _join_hosts() -> None:
  """A multi-host launch (JAX_COORDINATOR_ADDRESS, ..., or ARCHBENCH_DISTRIBUTED=1) joins the
  other hosts before anything touches a device. Only then is JAX imported here, so that
  report and compare run without it."""
  if os.environ.get('JAX_COORDINATOR_ADDRESS') or os.environ.get('ARCHBENCH_DISTRIBUTED'):
    from archbench.benchmarks.harness import parallel
    parallel.initialize_distributed()


def main(argv: list[str] | None = None) -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  flags.FLAGS.mark_as_parsed()  # each command parses its own FlagValues; absl's is unused
  logging.set_verbosity(logging.INFO)
  logging.use_absl_handler()
  for noisy in ('jax', 'absl.logging.jax'):  # backend probing at INFO is not progress
    std_logging.getLogger(noisy).setLevel(std_logging.WARNING)
  try:
    _join_hosts()
    code = run(sys.argv if argv is None else argv)
  except UsageError as e:  # an incomplete multi-host setting
    print(f'archbench: error: {e}', file=sys.stderr)
    code = 2
  except BrokenPipeError:  # `archbench list | head`: the reader left, nothing to report
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 0
  sys.exit(code)
