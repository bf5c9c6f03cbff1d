"""Shared test setup: force the CPU backend before anything imports JAX, share one
compilation cache across the session, and load the plug-ins named by `pytest --plugin
PATH_OR_MODULE` so that every registry-parametrised test covers their architectures and tasks
too.

The suite runs in parallel worker processes (pytest-xdist, `-n auto --dist loadfile` in
pyproject.toml: one worker per core, a test file on one worker so that its module-scoped
fixtures compile once); `-n 0` runs it in this process."""
import os
import tempfile

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def pytest_addoption(parser):
  parser.addoption('--plugin', action='append', default=[], metavar='PATH_OR_MODULE',
                   help='archbench plug-in to load before collection (repeatable)')


def pytest_configure(config):
  # One compilation cache for the session, cold at its start (so the suite's time is
  # honest) and never the user's own: made by the controlling process before it starts the
  # workers, which inherit it, as do the CLI runs the tests start.
  if not hasattr(config, 'workerinput') and 'ARCHBENCH_COMPILE_CACHE' not in os.environ:
    os.environ['ARCHBENCH_COMPILE_CACHE'] = tempfile.mkdtemp(prefix='archbench-test-cache-')
  from archbench.benchmarks import plugins
  plugins.load_all(config.getoption('plugin'))
