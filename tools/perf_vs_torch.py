"""archbench's backbones against PyTorch eager models of the same shapes, on the same CPU,
and the harness's overhead: the command line of archbench.benchmarks.perf.vs_torch (its
docstring says what is measured and how).

    pip install -e '.[torch]'
    python tools/perf_vs_torch.py [--rounds 3] [--steps 20] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

from archbench.benchmarks.harness import provenance
from archbench.benchmarks.perf.vs_torch import compare, harness_overhead, markdown, shapes
from archbench.benchmarks.results import records
from archbench.common import files


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='tools/perf_vs_torch.py',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--rounds', type=int, default=3, help='alternating rounds (>= 1)')
  parser.add_argument('--steps', type=int, default=20, help='timed steps per round (>= 1)')
  parser.add_argument('--archs', default='', help='comma-separated subset of: '
                      + ', '.join(s.arch for s in shapes()))
  parser.add_argument('--no_overhead', action='store_true', help='skip the harness overhead')
  parser.add_argument('--out', default='', help='folder for vs_torch.json and vs_torch.md')
  args = parser.parse_args(argv)
  valid = [s.arch for s in shapes()]
  only = [a for a in args.archs.split(',') if a]
  if args.rounds < 1 or args.steps < 1:
    parser.exit(2, f'archbench: error: --rounds and --steps must be >= 1, got '
                   f'{args.rounds} and {args.steps}\n')
  if bad := [a for a in only if a not in valid]:
    parser.exit(2, f'archbench: error: unknown shape {bad[0]!r}; valid: {", ".join(valid)}\n')
  try:
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
  except ImportError:
    torch = None
    print("torch is not installed (pip install -e '.[torch]'): timing archbench alone",
          file=sys.stderr)
  env = provenance.environment(sys.argv)
  env['torch'] = torch.__version__ if torch else None
  env['cpu_count'] = os.cpu_count()
  print(f"{'shape':32s} {'archbench':>8s} {'PyTorch':>8s} {'ratio':>6s}  (median ms per "
        f'training step, {args.rounds} alternating rounds of {args.steps} steps)')
  rows = compare(args.rounds, args.steps, torch, only)
  overhead = [] if args.no_overhead else harness_overhead(steps=100)
  if args.out:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files.write_atomically(out / 'vs_torch.json', json.dumps(
        records.to_jsonable({'rows': rows, 'overhead': overhead, 'env': env}), indent=1))
    files.write_atomically(out / 'vs_torch.md', markdown(rows, overhead, env))
    print(f'wrote {out}/vs_torch.json and vs_torch.md')
  return 0


if __name__ == '__main__':
  sys.exit(main())
