"""The statistics of archbench's ListOps generator at Long Range Arena's settings, printed
beside those of LRA's own generator (benchmarks/reproductions/_lra_stats.py says how those
were measured); the README's table "ListOps at Long Range Arena's settings" condenses them.

  python tools/lra_stats.py [--num 20000] [--seed 0]      (about 1 min for 20,000)
"""
from __future__ import annotations

import argparse
import sys

from archbench.benchmarks.reproductions._lra_stats import (LRA_COMMIT, LRA_GENERATOR_STATS,
                                                           LRA_TASK_PARAMS, comparison_table,
                                                           listops_statistics)
from archbench.data import listops


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='tools/lra_stats.py',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--num', type=int, default=20_000, help='expressions to generate')
  parser.add_argument('--seed', type=int, default=0, help="archbench's data_seed")
  args = parser.parse_args(argv)
  arrays = listops.generate(args.num, data_seed=args.seed, **LRA_TASK_PARAMS)
  ours = listops_statistics(arrays['tokens'], arrays['labels'])
  print(f'archbench: data/listops.py, N = {args.num}, data_seed = {args.seed}; LRA: '
        f'lra_benchmarks/data/listops.py at {LRA_COMMIT[:7]}, N = 20,000, random.seed(0)\n')
  print(comparison_table(ours, LRA_GENERATOR_STATS))
  return 0


if __name__ == '__main__':
  sys.exit(main())
