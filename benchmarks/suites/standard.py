"""The full matrix: every architecture x every task it can serve, at size small, three seeds.

Command: archbench run --suite standard
Runtime: measured by its reference run (results/README.md: 171 cells, two worker
processes on a 2-core CPU), compilation included.
Results: the reference run is committed in results/standard-cpu/ (summary.md). It trains
every cell with `quick`'s settings for its task, under the same protocol (the same
settings for every architecture, three seeds, stopping at the task's target); the other
pairs fill in the matrix (e.g. every sequence model on digits as a 64-step pixel
sequence, every causal model on translate as a prefix language model).
"""
from archbench.benchmarks.suites import quick


def get_config():
  config = quick.get_config()  # quick's tasks and budgets, every architecture on each
  config.name, config.doc = 'standard', __doc__.strip()
  for plan in config.tasks.values():
    plan.archs = None
  return config
