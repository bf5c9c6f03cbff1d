"""Shared test setup: force the CPU backend before anything imports JAX, and load the
plug-ins named by `pytest --plugin PATH_OR_MODULE` so that every registry-parametrised test
covers their architectures and tasks too."""
import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def pytest_sessionstart(session):
  """The CLI runs the tests start share one compilation cache, cold at the start of the
  session (so the suite's time is honest) and never the user's own."""
  if 'ARCHBENCH_COMPILE_CACHE' not in os.environ:
    import tempfile
    os.environ['ARCHBENCH_COMPILE_CACHE'] = tempfile.mkdtemp(prefix='archbench-test-cache-')


def pytest_addoption(parser):
  parser.addoption('--plugin', action='append', default=[], metavar='PATH_OR_MODULE',
                   help='archbench plug-in to load before collection (repeatable)')


def pytest_configure(config):
  from archbench.benchmarks import plugins
  plugins.load_all(config.getoption('plugin'))
