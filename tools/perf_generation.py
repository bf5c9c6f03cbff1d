"""Latency per generated token against context length, per causal backbone: the command
line of archbench.benchmarks.perf.generation (its docstring says what is measured and how).

    python tools/perf_generation.py [--lengths 64 256 1024 4096] [--archs decoder,lstm]
        [--batch 1] [--out DIR] [--no_recompute]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

from archbench.benchmarks import plugins
from archbench.benchmarks.core import UsageError, one_line
from archbench.benchmarks.harness import provenance
from archbench.benchmarks.perf.generation import (DEFAULT_LENGTHS, SIZE, decoding_archs,
                                                  markdown, measure, plot)
from archbench.benchmarks.results import records
from archbench.common import files


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # one line, exit 2 (argparse prints the usage too)
    self.exit(2, f'archbench: error: {message}\n')


def main(argv: list[str] | None = None) -> int:
  parser = _Parser(prog='tools/perf_generation.py',
                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--lengths', type=int, nargs='+', default=list(DEFAULT_LENGTHS),
                      help='context lengths (cache sizes), each >= 2')
  parser.add_argument('--archs', default='', help='comma-separated subset (default: every '
                      'architecture with decoding)')
  parser.add_argument('--batch', type=int, default=1, help='sequences decoded at once')
  parser.add_argument('--steps', type=int, default=16, help='decode steps per timed window')
  parser.add_argument('--windows', type=int, default=5, help='timed windows (after warm-up)')
  parser.add_argument('--no_recompute', action='store_true',
                      help='skip timing the whole-model forward pass per context')
  parser.add_argument('--plugin', action='append', default=[], metavar='PATH_OR_MODULE',
                      help='archbench plug-in to load first (repeatable)')
  parser.add_argument('--out', default='', help='folder for generation.{json,md,png}')
  args = parser.parse_args(argv)
  try:
    plugins.load_all(args.plugin)
  except UsageError as e:
    parser.error(str(e))
  valid = decoding_archs()
  only = [a for a in args.archs.split(',') if a] or valid
  if bad := [a for a in only if a not in valid]:
    parser.error(f'{bad[0]!r} has no token-by-token decoding or is unknown; valid: '
                 f'{", ".join(valid)}')
  if min(args.lengths) < 2 or min(args.batch, args.steps, args.windows) < 1:
    parser.error(f'--lengths must be >= 2 and --batch, --steps, --windows >= 1; got '
                 f'{args.lengths}, {args.batch}, {args.steps}, {args.windows}')
  lengths = sorted(set(args.lengths))
  env = provenance.environment(sys.argv if argv is None else ['generation', *argv])
  print(f"{'arch':12s} {'context':>8s} {'step ms':>9s} {'recompute ms':>13s}  "
        f"(batch {args.batch}; {env['cpu']}, {env['backend']})")
  rows = []
  for name in only:
    for length in lengths:
      try:
        row = measure(name, length, batch=args.batch, steps=args.steps,
                      windows=args.windows, recompute=not args.no_recompute)
      except Exception as e:  # noqa: BLE001  (a plug-in's failure is one line, not a stop)
        print(f'{name:12s} {length:8d}  failed: {one_line(e)}', file=sys.stderr)
        continue
      rows.append(row)
      recompute = f"{row['recompute_ms']:13.2f}" if 'recompute_ms' in row else ''
      print(f"{name:12s} {length:8d} {row['step_ms']:9.3f} {recompute}", flush=True)
  table = markdown(rows, env, lengths, args.batch)
  print(table)
  if args.out:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {'size': SIZE, 'batch': args.batch, 'lengths': lengths, 'steps': args.steps,
                'windows': args.windows}
    files.write_atomically(out / 'generation.json', json.dumps(
        records.to_jsonable({'settings': settings, 'rows': rows, 'env': env}), indent=1) + '\n')
    files.write_atomically(out / 'generation.md', table)
    if rows:
      plot(rows, env, out / 'generation.png', args.batch)
    print(f'wrote {out}/generation.json, generation.md and generation.png')
  return 0 if rows else 1


if __name__ == '__main__':
  sys.exit(main())
