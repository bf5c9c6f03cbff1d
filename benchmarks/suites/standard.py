"""The full matrix: every architecture x every task it can serve, at size small.

Command: archbench run --suite standard
Runtime: 10 min 9 s measured on a 2-core CPU (57 cells), compilation included.
Results: the reference run (seed 0, on the reference machine) is committed in
results/standard-cpu/ (summary.md). It trains the cells it shares with `quick` with the
same budgets (docs/studies/quick.md shows those); the
other pairs fill in the matrix (e.g. every sequence model on digits as a 64-step pixel
sequence, every causal model on translate as a prefix language model).
"""
from archbench.benchmarks.suites import quick


def get_config():
  config = quick.get_config()  # quick's tasks and budgets, every architecture on each
  config.name, config.doc = 'standard', __doc__.strip()
  for plan in config.tasks.values():
    plan.archs = None
  return config
