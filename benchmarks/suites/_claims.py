"""How `archbench claims` runs its cells, not what they are: the executor (local, ray,
slurm), workers, Ray and Slurm settings, trackers and execution limits. The experiments
themselves are the claims' own (benchmarks/claims/), fixed so that verdicts compare;
its other sections (config.CLAIMS_RUN_SECTIONS names those it may set) are refused
when overridden.

Command: archbench claims --config.executor=slurm --config.slurm.partition=gpu
Not a suite: the leading underscore keeps it out of `archbench list`.
"""
from archbench.benchmarks.config import suite_config


def get_config():
  return suite_config(name='claims', doc=__doc__, size='small', tasks={}, workers=2)
