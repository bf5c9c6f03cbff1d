"""The package's layering, read from the source's imports (every import statement, at module
level or inside a function): no import cycles; archs/ and data/ never import each other or
the harness; common/ and benchmarks/core.py import nothing of archbench; the results layer
(benchmarks/results/) reads records without JAX, the harness, the config, the timer,
architectures or tasks, so `archbench report` and `archbench compare` run without JAX; the
top-level package (`import archbench`, and `archbench.load`) keeps to the results layer's
rules."""
import ast
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# Package name -> its folder, as installed (pyproject.toml's package-dir): archbench itself
# (src/archbench) and archbench.<top> for each of the design card's folders.
PACKAGE_DIR = tomllib.loads((REPO / 'pyproject.toml').read_text())['tool']['setuptools'][
    'package-dir']
RESULTS = 'archbench.benchmarks.results'
# What the results layer must not reach, directly or through the modules it imports.
NOT_IN_RESULTS = ('archbench.archs', 'archbench.data', 'archbench.benchmarks.harness',
                  'archbench.benchmarks.config', 'archbench.benchmarks.measure')
NOT_IN_RESULTS_THIRD_PARTY = ('jax', 'jaxlib', 'flax', 'optax', 'orbax')


def _modules() -> dict[str, pathlib.Path]:
  """archbench module name -> its file (a package is its __init__.py)."""
  out = {}
  for package, folder in PACKAGE_DIR.items():
    for path in (REPO / folder).rglob('*.py'):
      parts = path.relative_to(REPO / folder).with_suffix('').parts
      parts = parts[:-1] if parts[-1] == '__init__' else parts
      out['.'.join([package, *parts])] = path
  return out


MODULES = _modules()


def _imported(name: str, path: pathlib.Path) -> set[str]:
  """Every module `name` imports: archbench modules by their full name (`from package
  import module` names the module), others by their top-level name."""
  package = name if path.name == '__init__.py' else name.rpartition('.')[0]
  found = set()
  for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:  # relative: from the package, level - 1 packages up
        up = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(up + ([node.module] if node.module else []))
      for alias in node.names:
        found.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in MODULES else base)
  return {m if m.startswith('archbench.') else m.split('.')[0] for m in found}


IMPORTS = {name: _imported(name, path) for name, path in MODULES.items()}
GRAPH = {name: {m for m in found if m in MODULES and m != name}
         for name, found in IMPORTS.items()}


def _within(module: str, prefixes) -> bool:
  return any(module == p or module.startswith(p + '.') for p in prefixes)


def _reached(name: str) -> set[str]:
  """`name` and every archbench module importing it imports, transitively (each with its
  parent packages, archbench itself included, which Python runs first)."""
  seen, todo = set(), [name]
  while todo:
    module = todo.pop()
    if module in seen:
      continue
    seen.add(module)
    parents = ['.'.join(module.split('.')[:i]) for i in range(1, module.count('.') + 1)]
    todo += [m for m in [*GRAPH[module], *parents] if m in MODULES]
  return seen


def _cycles() -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(GRAPH[v]):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while not component or component[-1] != v:
        component.append(stack.pop())
        on_stack.discard(component[-1])
      if len(component) > 1:
        found.append(sorted(component))
  for v in sorted(GRAPH):
    if v not in index:
      visit(v)
  return found


def test_every_package_folder_is_read():
  """The graph covers the top-level package and every folder installed under it."""
  assert MODULES['archbench'] == REPO / 'src' / 'archbench' / '__init__.py'
  for top in ('archs', 'data', 'benchmarks', 'common'):
    assert MODULES[f'archbench.{top}'] == REPO / top / '__init__.py'
  assert f'{RESULTS}.frame' in MODULES


def test_the_graph_sees_every_kind_of_import():
  """The parser itself: function-level imports, `from package import module`, aliases."""
  assert 'matplotlib' in IMPORTS[f'{RESULTS}.plots']  # inside pyplot() only
  assert {'jax', 'flax', 'archbench.common.files'} <= IMPORTS['archbench.archs.registry']
  assert f'{RESULTS}.records' in GRAPH[f'{RESULTS}.report']  # `import records as records_lib`


def test_no_import_cycles():
  assert _cycles() == []


def test_archs_and_data_never_import_each_other_nor_the_harness():
  for name, found in GRAPH.items():
    if _within(name, ['archbench.archs']):
      assert not [m for m in found if _within(m, ['archbench.data', 'archbench.benchmarks'])], name
    if _within(name, ['archbench.data']):
      assert not [m for m in found if _within(m, ['archbench.archs', 'archbench.benchmarks'])], name


def test_common_and_core_import_nothing_of_archbench():
  """Every layer may import them: they import no other part of archbench."""
  for name in [m for m in MODULES if _within(m, ['archbench.common'])]:
    assert not [m for m in GRAPH[name] if not _within(m, ['archbench.common'])], name
  assert GRAPH['archbench.benchmarks.core'] == set()


def test_the_results_layer_reads_records_without_jax_the_harness_or_the_config():
  layer = [m for m in MODULES if _within(m, [RESULTS])]
  assert f'{RESULTS}.report' in layer and f'{RESULTS}.compare' in layer
  for name in layer:
    reached = _reached(name)
    assert not [m for m in reached if _within(m, NOT_IN_RESULTS)], name
    third_party = set().union(*(IMPORTS[m] for m in reached))
    assert not third_party & set(NOT_IN_RESULTS_THIRD_PARTY), name


def test_the_top_level_package_keeps_to_the_results_layer():
  """`import archbench` and what it loads on first use (archbench.load) reach no JAX, no
  harness, no config: reading results as data stays cheap. Its lazy import counts."""
  assert f'{RESULTS}.frame' in GRAPH['archbench']
  reached = _reached('archbench')
  assert not [m for m in reached if _within(m, NOT_IN_RESULTS)]
  assert not set().union(*(IMPORTS[m] for m in reached)) & set(NOT_IN_RESULTS_THIRD_PARTY)


def test_the_rule_catches_a_harness_import(monkeypatch):
  """A results module importing the harness inside a function is caught."""
  monkeypatch.setitem(GRAPH, f'{RESULTS}.metrics',
                      GRAPH[f'{RESULTS}.metrics'] | {'archbench.benchmarks.harness.runner'})
  assert _within('archbench.benchmarks.harness.runner', NOT_IN_RESULTS)
  assert 'archbench.benchmarks.harness.runner' in _reached(f'{RESULTS}.report')
  assert 'jax' in set().union(*(IMPORTS[m] for m in _reached(f'{RESULTS}.report')))


# ---------------------------------------------------------------------------------------
# At run time: report and compare on committed runs, JAX never imported.

RUN = REPO / 'results' / 'quick-cpu'
_NO_JAX = """
import sys
{body}
assert 'jax' not in sys.modules, 'jax imported'
"""


def _run_without_jax(body: str, tmp_path) -> subprocess.CompletedProcess:
  for side in ('base', 'new'):
    shutil.copytree(RUN, tmp_path / side)
  return subprocess.run([sys.executable, '-c', _NO_JAX.format(body=body)], cwd=tmp_path,
                        capture_output=True, text=True, timeout=300)


def test_report_and_compare_of_committed_runs_import_no_jax(tmp_path):
  """The results layer's own entry points: the whole report (tables, plots, HTML) and a
  comparison of two runs."""
  proc = _run_without_jax("""
from archbench.benchmarks.results import compare, report
report.write_summaries(__import__('pathlib').Path('base'), plots=True)
result = compare.compare(compare.load('base'), compare.load('new'))
assert result.exit_code == 0 and result.rows, compare.to_markdown(result)
""", tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (tmp_path / 'base' / 'summary.md').read_bytes() == (RUN / 'summary.md').read_bytes()


def test_import_archbench_and_load_import_no_jax(tmp_path):
  """`import archbench` loads none of its subpackages; archbench.load reads a committed run
  with pandas alone."""
  proc = _run_without_jax("""
import archbench
assert not [m for m in sys.modules if m.startswith('archbench.')], 'a subpackage imported'
frame = archbench.load('base', status='ok')
assert len(frame) == 75 and 'metrics.eval/accuracy' in frame, frame.shape
""", tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize('command', ['report base', 'compare base new'])
def test_cli_report_and_compare_import_no_jax(tmp_path, command):
  proc = _run_without_jax(f"""
from archbench.benchmarks import cli
try:
  cli.main(['archbench', *{command.split()!r}])
except SystemExit as e:
  assert e.code == 0, e.code
""", tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
