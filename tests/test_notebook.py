"""The example notebook, examples/compare_architectures.ipynb, cannot rot: executed top to
bottom in a fresh kernel (nbclient) on the committed quick run, it raises no error, draws
its figure and prints each architecture's accuracy on copy as the records hold it; and it
is committed with its outputs stripped."""
import pathlib
import statistics

import nbclient
import nbformat
import pytest

from archbench.benchmarks.results import records as records_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / 'examples' / 'compare_architectures.ipynb'


def test_the_notebook_is_committed_without_outputs():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(notebook)
  code = [cell for cell in notebook.cells if cell.cell_type == 'code']
  assert code and all(c.outputs == [] and c.execution_count is None for c in code)
  assert 'archbench.load(' in ''.join(c.source for c in code)


@pytest.mark.slow
def test_the_notebook_runs_and_shows_the_comparison():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=120, kernel_name='python3',
                                   resources={'metadata': {'path': str(NOTEBOOK.parent)}})
  client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
  outputs = [o for cell in notebook.cells if cell.cell_type == 'code' for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  assert [o for o in outputs if 'image/png' in o.get('data', {})], 'no figure drawn'
  printed = ''.join(o.text for o in outputs if o.output_type == 'stream' and o.name == 'stdout')
  # What it prints is what the records say, computed here without pandas.
  copy = {}
  for r in records_lib.load_records(REPO / 'results' / 'quick-cpu' / 'results.jsonl'):
    if r['task'] == 'copy' and r['status'] == 'ok':
      copy.setdefault(r['arch'], []).append(r['metrics']['eval/accuracy'])
  assert len(copy) >= 5
  for arch, values in copy.items():
    line = (f'copy {arch}: mean {statistics.mean(values):.3f} over {len(values)} seeds '
            f'(min {min(values):.3f}, max {max(values):.3f})')
    assert line in printed, (line, printed)
