"""archbench: CNNs, RNNs, Transformers and linear recurrences through one harness, in
JAX/Flax.

The top-level package holds the version and the entry point for reading results as data:

  archbench.__version__   the release (the only place it is written; pyproject.toml reads it)
  archbench.load(...)     run directories or results.jsonl files as a pandas DataFrame
                          (the `analysis` extra): see archbench.benchmarks.results.frame

Its subpackages are archbench.archs (backbones), archbench.data (tasks),
archbench.benchmarks (the harness, the results layer, the command line) and
archbench.common. Importing archbench imports none of them: `load` is looked up on first
use, and it lives in the results layer, which never imports JAX, so reading results stays
cheap.
"""
__version__ = '0.2.0'

__all__ = ['__version__', 'load']


def __getattr__(name: str):
  """`archbench.load`, imported on first use (PEP 562), so that `import archbench` stays
  light."""
  if name == 'load':
    from archbench.benchmarks.results.frame import load
    return load
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted([*globals(), 'load'])
