"""The full matrix: every architecture x every task it can serve, at size small.

Command: archbench run --suite standard
Runtime: 10 min 9 s measured on a 2-core CPU (57 cells), compilation included.
Reference run: results/standard-cpu/.
Results (seed 0, on the reference machine): as `quick` for the cells they share, with
the same training budgets; the other pairs fill in the matrix (e.g. every sequence model
on digits as a 64-step pixel sequence, every causal model on translate as a prefix
language model). On forecast every model beats linear AR (MSE 0.104), from the Elman
RNN's 0.040 to the LRU's and transformer's 0.0125; on lm every causal model is within 5%
of the entropy rate.
"""
from archbench.benchmarks.suites import quick


def get_config():
  config = quick.get_config()  # quick's tasks and budgets, every architecture on each
  config.name, config.doc = 'standard', __doc__.strip()
  for plan in config.tasks.values():
    plan.archs = None
  return config
