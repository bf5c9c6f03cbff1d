"""Tasks: on-device synthetic generators, bundled datasets and TFDS datasets, by name.

`data` never imports `archs` or `benchmarks`: a task describes inputs and outputs through
its TaskSpec and knows nothing of the model that reads it.
"""
from archbench.data.registry import at_length, build, get, names, register, spec_of
from archbench.data.spec import KINDS, Task, TaskSpec

# Task modules register themselves on import.
from archbench.data import synthetic, digits, translate, long_range  # noqa: F401  (registration side effect)
from archbench.data import listops, language, forecast  # noqa: F401
from archbench.data import chomsky  # noqa: F401
from archbench.data import pixels  # noqa: F401  (image generation; reads tfds_tasks)
from archbench.data import tfds_tasks  # noqa: F401
from archbench.data import speech  # noqa: F401

__all__ = ['KINDS', 'Task', 'TaskSpec', 'at_length', 'build', 'get', 'names', 'register', 'spec_of']
