"""Fill the README's results tables from the committed runs, or check that they match: the
command line of archbench.benchmarks.results.readme_tables (its docstring says how), kept
out of the installed package because it edits this repository's files.

    python tools/readme_tables.py [--check] [--root DIR] [FILE ...]
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from archbench.benchmarks.results.readme_tables import (COMMAND, DEFAULT_FILES, UsageError,
                                                        stale_blocks, update)

ROOT = pathlib.Path(__file__).resolve().parents[1]  # the repository this file is in


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split('\n\n')[0])
  parser.add_argument('files', nargs='*', metavar='FILE',
                      help=f'files to fill, relative to --root (default: '
                           f'{" ".join(DEFAULT_FILES)})')
  parser.add_argument('--check', action='store_true',
                      help='write nothing; exit 1 naming each stale block, 0 if none')
  parser.add_argument('--root', type=pathlib.Path, default=ROOT,
                      help='the repository root that FILEs and sources are relative to '
                           '(default: %(default)s)')
  args = parser.parse_args(argv)
  files = tuple(args.files) or DEFAULT_FILES
  try:
    if args.check:
      stale = stale_blocks(args.root, files)
      if stale:
        print(f'stale generated tables: {", ".join(stale)}; regenerate with: {COMMAND}',
              file=sys.stderr)
        return 1
      print(f'generated tables up to date in {", ".join(files)}')
      return 0
    for name, (blocks, changed) in update(args.root, files).items():
      print(f'{name}: {blocks} generated blocks, {changed} updated')
    return 0
  except (UsageError, OSError) as e:
    print(f'{COMMAND.split()[-1]}: error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
