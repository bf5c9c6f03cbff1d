"""The command line's grammar: every flag, each command with its arguments and the flags it
takes, the suite or reproduction file it reads, and the help they make. cli.py parses argv
with these and dispatches."""
from __future__ import annotations

import pathlib
from typing import NamedTuple

from absl import flags
from ml_collections import config_flags

from archbench.benchmarks.core import UsageError, one_line

DEFAULT_SUITE = 'quick'  # what `archbench run` and `estimate` use without --suite or --config
_SEED = {'lower_bound': 0, 'upper_bound': 2**31 - 1}
# name: (absl definer, default, help[, definer arguments]); a command defines those it takes.
FLAG_SPECS = {
    'suite': (flags.DEFINE_string, None, f'Built-in suite (default {DEFAULT_SUITE}; see '
              '`archbench list`).'),
    'config': (config_flags.DEFINE_config_file, None, 'A suite file of your own (a .py '
               'defining get_config()) instead of --suite; --config.<path>=<value> sets any '
               'field of the suite (reproduce NAME: of the reproduction).',
               {'lock_config': True}),
    'plugin': (flags.DEFINE_multi_string, [], 'Python file or module registering your own '
               'architectures, tasks, evaluators, report sections or claims (repeatable).'),
    'archs': (flags.DEFINE_list, None, 'Only these architectures (comma-separated).'),
    'tasks': (flags.DEFINE_list, None, 'Only these tasks (comma-separated).'),
    'size': (flags.DEFINE_string, None, 'Parameter budget (tiny, small, base, large): '
             'overrides the suite\'s size.'),
    'seed': (flags.DEFINE_integer, None, 'Run this seed instead of the planned seeds.', _SEED),
    'out': (flags.DEFINE_string, None, 'Output directory (default '
            './results/runs/<suite>-<UTC>/).'),
    'workers': (flags.DEFINE_integer, None, 'Cells run at once (default: the suite\'s, else '
                '1; timings are only comparable with 1).', {'lower_bound': 1,
                                                            'upper_bound': 64}),
    'from_record': (flags.DEFINE_string, None, 'Re-run one recorded cell exactly: '
                    'RESULTS_JSONL:N (the N-th record, from 1).'),
    'reuse': (flags.DEFINE_multi_string, [], 'Copy, instead of running, every cell already '
              'recorded ok in this run (directory or results.jsonl; repeatable) by the same '
              'code (the same cell_id and code version); the new run holds its records and '
              'runs only the cells it lacks.'),
    'resume': (flags.DEFINE_string, None, 'Continue the killed run in this directory: '
               'recorded cells are skipped, the cell in flight continues from its checkpoint.'),
    'tuned': (flags.DEFINE_string, None, 'Take each (architecture, task)\'s settings from the '
              'tuning run in this directory (archbench tune; its tuning.json), on top of the '
              'suite\'s; pairs it did not tune keep the suite\'s. Records say which.'),
    'timing': (flags.DEFINE_bool, None, 'Also judge step times (same machine only): on by '
               'default for compare, off for reproduce DIR.'),
    'json': (flags.DEFINE_bool, False, 'Print JSON.'),
    'list': (flags.DEFINE_bool, False, 'List the reproductions of published results, each '
             'at both sizes, with their runtimes.'),
    'results': (flags.DEFINE_string, 'results', 'Folder of the committed runs, '
                'results/<reproduction>/, whose measured runtimes --list shows (default: '
                './results).'),
    'rates': (flags.DEFINE_string, 'results/scaling-cpu', 'A run (directory or '
              'results.jsonl) whose ok cells give each architecture\'s measured training '
              'rate.'),
    'data_dir': (flags.DEFINE_string, None, 'Directory of prepared datasets, TFDS\'s and '
                 'spoken_digits (default: $ARCHBENCH_DATA_DIR, else $TFDS_DATA_DIR, else '
                 '~/tensorflow_datasets).'),
    'compile_cache': (flags.DEFINE_string, None, 'Directory of JAX\'s persistent compilation '
                      'cache, so a second run skips most compilation (default: '
                      '$ARCHBENCH_COMPILE_CACHE, else ~/.cache/archbench/jax); "off" turns '
                      'it off.'),
}


# A flag whose meaning differs for one command: that command's help for it.
COMMAND_FLAG_HELP = {
    ('claims', 'size'): 'cpu (default: sized for a 2-core CPU; 25 min measured with 2 '
                        'workers, results/claims-cpu) or full (the accelerator budget; '
                        '--list estimates its runtime).',
    ('claims', 'list'): 'List the claims: wording, family, cells and estimated runtime at '
                        'each size, decision rule, or why one cannot be tested.',
    ('claims', 'resume'): 'Continue the killed claims study in this directory, then judge it.',
    ('claims', 'results'): 'Folder of the committed runs whose step rates --list estimates '
                           'runtimes from (default: ./results).',
    ('claims', 'workers'): 'Cells run at once (default 2: the cpu size is sized for two; step '
                           'times are then slower than alone, for every architecture).',
}


class Command(NamedTuple):
  args: str
  doc: str
  flags: tuple[str, ...]


COMMANDS = {
    'list': Command('[--suite NAME | --config PATH] [--json] [--plugin P]',
                    'Architectures, tasks and suites, each suite with its config paths; with '
                    '--suite, every config path of that suite and its value.',
                    ('suite', 'config', 'json', 'plugin')),
    'run': Command('[--suite NAME | --config PATH] [--config.PATH=VALUE ...] [flags]',
                   'Run a suite (default quick) and write results.jsonl, summary.md, '
                   'summary.csv, summary.tex, plots and report.html under --out.',
                   ('suite', 'config', 'plugin', 'archs', 'tasks', 'size', 'seed', 'out',
                    'workers', 'from_record', 'resume', 'tuned', 'reuse', 'data_dir',
                    'compile_cache')),
    'tune': Command('[--suite NAME | --config PATH] [--config.tuning.PATH=VALUE ...] [flags]',
                    'Tune every architecture of a suite with the same budget: per '
                    '(architecture, task), the same number of trials of the declared search '
                    'space (config.tuning), selected on validation, then the selection re-run '
                    'on the suite\'s seeds. Writes tuning.json (every trial and the '
                    'selection), trials/ (their records) and the re-run\'s results.jsonl and '
                    'summaries under --out; use it with run --tuned DIR.',
                    ('suite', 'config', 'plugin', 'archs', 'tasks', 'size', 'seed', 'out',
                     'workers', 'resume', 'data_dir', 'compile_cache')),
    'report': Command('[--plugin P] DIR | DIR1 DIR2 ... --out DIR', 'Rebuild the summaries '
                      '(Markdown, CSV, LaTeX), the plots and the HTML report of a run from '
                      'DIR/results.jsonl (--plugin: its report sections too); with --out, one '
                      'table of several runs, written to that directory (runs of different '
                      'code must declare the same protocol; a cell recorded twice counts '
                      'once).', ('plugin', 'out')),
    'compare': Command('BASE NEW [--json] [--notiming]',
                       'Compare two runs cell by cell, each difference against its tolerance '
                       '(seed spread, timing windows); exit 1 when a cell got worse.',
                       ('json', 'timing')),
    'reproduce': Command('NAME [--config.PATH=VALUE ...] | DIR [--timing] | --list [--results '
                         'DIR]', 'Reproduce a published result (NAME, see --list): run it, then '
                         'write and print paper | archbench | difference | verdict; --archs '
                         'and --tasks run and judge only those rows. Or re-run the cells of a '
                         'run directory (e.g. results/quick-cpu) from their records and compare.',
                         ('list', 'results', 'config', 'archs', 'tasks', 'seed', 'out',
                          'workers', 'timing', 'tuned', 'plugin', 'data_dir', 'compile_cache')),
    'estimate': Command('[--suite NAME | --config PATH] [--rates RUN]', 'How long a suite '
                        'will take: its training FLOPs over the rates measured in RUN (CPU), '
                        'and over a stated assumption (GPU).',
                        ('suite', 'config', 'rates', 'plugin')),
    'env': Command('[--json]', 'What this machine would record as provenance: CPU and its '
                   'features, devices, XLA flags, matmul precision, versions, code version and '
                   'commit.', ('json',)),
    'claims': Command('[NAME ...] [--size cpu|full] [--out DIR] [--workers N] '
                      '[--config.executor=local|ray|slurm --config.slurm.PATH=V ...] | '
                      '--resume DIR | --list [--size S]', 'Test what people believe about CNNs, RNNs and '
                      'Transformers (see --list): run each claim\'s experiment (all of them, '
                      'or the NAMEs), then write claims.md, claims.tex, claims.json, a plot per '
                      'claim and report.html, each claim with its verdict (holds, fails, '
                      'depends), evidence and test; archbench report DIR re-judges.',
                      ('list', 'size', 'out', 'workers', 'resume', 'results', 'plugin',
                       'config', 'data_dir', 'compile_cache')),
    'data': Command('prepare NAME [--data_dir DIR]', 'Download and prepare a TFDS dataset '
                    '(needs network and the `prepare` extra), or synthesise spoken_digits '
                    '(needs espeak-ng).', ('data_dir',)),
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
# The tuning paths, shown by `archbench tune --help`.
TUNING_PATHS = (
    ('tuning.trials=N', 'trials per (architecture, task), the same for every architecture'),
    ('tuning.sampler=sobol', 'sobol or halton (scrambled, seeded quasi-random points) or grid '
     '(trials = k**dimensions)'),
    ('tuning.seed=N', 'the sampler\'s seed: the same seed, the same points'),
    ('tuning.seeds=0,1', 'the seeds each trial trains (the re-run uses the suite\'s)'),
    ('tuning.rule=mean', 'select by the mean over a trial\'s seeds, or best (its best seed)'),
    ('tuning.space.lr.low=X', 'a training field\'s bounds (scale log, linear or int); '
     'fields: lr, warmup_steps, weight_decay, clip_norm'),
    ('tuning.arch_space=False', 'leave out the architectures\' own options (dropout, '
     'positional encoding)'),
)
TUNE_EXAMPLE = ('archbench tune --archs lstm,gru --tasks adding --config.tuning.trials=4 '
                '--config.train.steps=30 --out /tmp/tuned; then archbench run --tuned '
                '/tmp/tuned --archs lstm,gru --tasks adding')


def make_flags(command: str, argv: list[str] | None = None) -> flags.FlagValues:
  """A fresh set of `command`'s flags (config_flags finds --config.* in argv)."""
  fv = flags.FlagValues()
  for name in COMMANDS[command].flags:
    define, default, help_text, *extra = FLAG_SPECS[name]
    help_text = COMMAND_FLAG_HELP.get((command, name), help_text)
    kwargs = {**(extra[0] if extra else {}), **({'sys_argv': argv} if name == 'config' else {})}
    define(name, default, help_text, flag_values=fv, **kwargs)
  return fv


def help_text(command: str | None) -> str:
  if command not in COMMANDS:
    lines = [USAGE, '', 'Commands:', *(f'  {n:9s} {c.doc}' for n, c in COMMANDS.items()),
             '', f'Example: {EXAMPLE}', 'Exit codes: 0 all cells ok, 1 a cell failed '
             '(compare, reproduce: a cell got worse), 2 bad usage.',
             '`archbench --version` prints the version.']
    return '\n'.join(lines)
  spec, fv = COMMANDS[command], make_flags(command)
  lines = [f'usage: archbench {command} {spec.args}', '', spec.doc]
  lines += ['', 'Flags:'] * bool(spec.flags)
  lines += [f'  --{n:12s} {" ".join(fv[n].help.split())}' for n in spec.flags]
  if command == 'run':
    lines += ['', 'Config overrides (ml_collections syntax; `archbench list --suite NAME` '
              'shows every path and its value):']
    lines += [f'  --config.{path:32s} {doc}' for path, doc in COMMON_PATHS]
    lines += ['  Global overrides (train.*, task.*, arch.*) win over the suite\'s per-task '
              'and per-architecture settings.', '', f'Example:\n  {EXAMPLE}']
  if command == 'tune':
    lines += ['', 'Tuning (`archbench list --suite NAME` shows every tuning path and its '
              'value); selection reads the validation metric (val/...) only:']
    lines += [f'  --config.{path:32s} {doc}' for path, doc in TUNING_PATHS]
    lines += ['  The other overrides (train.*, task.*, arch.*) apply as in run, except to a '
              'tuned field.', '', f'Example:\n  {TUNE_EXAMPLE}']
  return '\n'.join(lines)


def flag_values(argv: list[str], name: str) -> list[str]:
  """Values of --name=V and --name V in argv (before absl parses it)."""
  return [arg.split('=', 1)[1] if '=' in arg else argv[i + 1]
          for i, arg in enumerate(argv) if arg.startswith(f'--{name}=') or
          (arg == f'--{name}' and i + 1 < len(argv))]


def refuse_foreign_flags(argv: list[str], command: str) -> None:
  """A flag of another command is refused by name, with the flags this one takes."""
  taken = COMMANDS[command].flags
  for arg in argv[1:argv.index('--') if '--' in argv else None]:
    name = arg.lstrip('-').split('=', 1)[0].split('.', 1)[0]
    if name.startswith('no') and FLAG_SPECS.get(name[2:], (None,))[0] is flags.DEFINE_bool:
      name = name[2:]
    if arg.startswith('-') and name in FLAG_SPECS and name not in taken:
      takes = f'its flags: {", ".join("--" + n for n in taken)}' if taken else 'it takes none'
      raise UsageError(f'{command} does not take --{name}; {takes}')


def suite_file_error(file: str, error: Exception) -> str:
  """A suite file's own bug, in one line that says whose it is."""
  return f'--config {file} failed to load: {one_line(error)}'


def with_config_file(argv: list[str], command: str) -> list[str]:
  """argv with --config=<the suite's or reproduction's file> when the command takes one
  and no suite file of the user's was given; a user's file is checked here. Commands that
  take no config (report, compare) return before importing it, and so before JAX."""
  if 'config' not in COMMANDS[command].flags:
    return argv
  from archbench.benchmarks import config as config_lib
  files, suites = flag_values(argv, 'config'), flag_values(argv, 'suite')
  recorded = [m for m in ('resume', 'from_record')
              if command in ('run', 'tune') and flag_values(argv, m)]
  if recorded and any(a.startswith('--config') for a in argv):  # cmd_run refuses the others
    raise UsageError(f'--{recorded[0]} runs cells as they were recorded; drop --config')
  if 'resume' in recorded:
    return argv
  if command == 'claims':  # how the claims run; their experiments are fixed
    if files:
      raise UsageError('claims takes --config.<path>=<value> (how its cells run: '
                       f'{", ".join(config_lib.CLAIMS_RUN_SECTIONS)}), not a suite file')
    if flag_values(argv, 'resume') and any(a.startswith('--config') for a in argv):
      raise UsageError('--resume continues a claims study as it was planned; drop --config')
    return [argv[0], f'--config={config_lib.CLAIMS_RUN_FILE}', *argv[1:]]
  if files and suites:
    raise UsageError('give --suite NAME or --config PATH, not both')
  if files:  # loaded here too: config_flags would reuse a module of the same name
    if command == 'reproduce':
      raise UsageError('reproduce takes a reproduction NAME (archbench reproduce --list), '
                       'not --config; set its fields with --config.<path>=<value>')
    if not pathlib.Path(files[-1].split(':')[0]).is_file():
      raise UsageError(f'--config {files[-1]}: no such suite file')
    try:
      config_lib.load(files[-1])
    except Exception as e:
      raise UsageError(suite_file_error(files[-1], e)) from None
    return argv
  if command == 'reproduce':
    names = [a for a in argv[1:] if a in config_lib.reproductions()]
    if not names:
      if any(a.startswith('--config.') for a in argv):
        raise UsageError('--config.<path> overrides apply to reproduce NAME; reproduce DIR '
                         're-runs the recorded cells as they were')
      return argv
    path, size = config_lib.reproductions()[names[0]]
    return [argv[0], f'--config={path}:{size}', *argv[1:]]
  if command not in ('run', 'tune', 'estimate') and not (command == 'list' and suites):
    return argv
  path = config_lib.suite_path(suites[-1] if suites else DEFAULT_SUITE)
  return [argv[0], f'--config={path}', *argv[1:]]
