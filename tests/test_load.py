"""archbench.load: committed runs as a pandas DataFrame, one row per record with its
metrics, perf, config and env flattened into columns; filters, several runs, curves, and
the errors a user meets (a missing run, no pandas)."""
import json
import pathlib

import pandas
import pytest

import archbench
from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import frame
from archbench.benchmarks.results import records as records_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
QUICK = REPO / 'results' / 'quick-cpu'
RECORDS = records_lib.load_records(QUICK / 'results.jsonl')


@pytest.fixture(scope='module')
def quick():
  return archbench.load(QUICK)


def test_archbench_load_is_the_results_layers():
  assert archbench.load is frame.load
  assert 'load' in dir(archbench) and 'load' in archbench.__all__
  with pytest.raises(AttributeError, match='no attribute'):
    archbench.nothing_here  # noqa: B018


def test_one_row_per_record_with_flattened_columns(quick):
  assert len(quick) == len(RECORDS) == 75
  assert list(quick.columns[:10]) == list(frame.IDENTITY)
  first, row = RECORDS[0], quick.iloc[0]
  for key in frame.IDENTITY:
    assert row[key] == first.get(key), key
  for key, value in first['metrics'].items():
    got = row[f'metrics.{key}']
    assert got == value or (value is None and pandas.isna(got)), key  # None: NaN if numeric
  assert row['perf.params'] == first['perf']['params']
  assert row['config.train.lr'] == first['config']['train']['lr']
  assert row['config.task_spec.metric'] == first['config']['task_spec']['metric']
  assert row['env.packages.jax'] == first['env']['packages']['jax']
  assert row['ran_on.executor'] == first['ran_on']['executor']
  # Sections stay together, in the module doc's order; no curves unless asked.
  sections = [c.split('.')[0] for c in quick.columns[10:]]
  assert sections == sorted(sections, key=['metrics', 'perf', 'config', 'env',
                                           'ran_on'].index)
  assert not [c for c in quick.columns if c.startswith('curves.')]
  # A value column is numeric, so that a groupby reads it directly.
  assert quick['metrics.eval/mse'].dtype.kind == 'f' and quick['seed'].dtype.kind == 'i'
  spread = quick[quick.task == 'copy'].groupby('arch')['metrics.eval/accuracy'].agg(['mean',
                                                                                     'count'])
  assert spread.loc['transformer', 'mean'] == 1.0 and set(spread['count']) == {3}


def test_paths_files_and_several_runs():
  one = archbench.load(QUICK / 'results.jsonl')
  assert len(one) == 75
  tuning = REPO / 'results' / 'tuning-cpu'
  both = archbench.load(str(QUICK), [tuning, tuning / 'trials' / 'results.jsonl'])
  sizes = [len(records_lib.load_records(p / 'results.jsonl')) for p in (QUICK, tuning)]
  sizes.append(len(records_lib.load_records(tuning / 'trials' / 'results.jsonl')))
  assert len(both) == sum(sizes)
  assert list(both.run_id.drop_duplicates()) == [
      records_lib.load_records(p)[0]['run_id']
      for p in (QUICK / 'results.jsonl', tuning / 'results.jsonl',
                tuning / 'trials' / 'results.jsonl')]  # the order given
  # A schema-1 record (no cell_id, no curves, no ran_on) reads into the same columns.
  old = archbench.load(REPO / 'tests' / 'fixtures' / 'quick-cpu-schema1')
  assert old['cell_id'].isna().all() and (old['schema'] == 1).all()
  assert 'metrics.eval/mse' in old and not [c for c in old if c.startswith('ran_on.')]


def test_status_filter_and_curves(tmp_path):
  broken = json.loads(json.dumps(RECORDS[:3]))
  broken[1].update(status='diverged', error='Diverged: loss nan at step 20')
  (tmp_path / 'results.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in broken))
  assert list(archbench.load(tmp_path).status) == ['ok', 'diverged', 'ok']
  ok = archbench.load(tmp_path, status='ok')
  assert list(ok.seed) == [RECORDS[0]['seed'], RECORDS[2]['seed']] and ok.error.isna().all()
  failed = archbench.load(tmp_path, status=['diverged', 'error'])
  assert list(failed.error) == ['Diverged: loss nan at step 20']
  with pytest.raises(UsageError, match=r"unknown status 'fine'; valid: ok, diverged"):
    archbench.load(tmp_path, status='fine')
  with_curves = archbench.load(tmp_path, curves=True)
  assert with_curves.loc[0, 'curves.train/loss'] == broken[0]['curves']['train/loss']
  assert with_curves.columns[-1].startswith('curves.')


def test_a_missing_run_is_a_usage_error(tmp_path):
  with pytest.raises(UsageError, match='no such run'):
    archbench.load(tmp_path / 'nowhere')
  with pytest.raises(UsageError, match='no such run'):
    archbench.load(tmp_path)  # a directory without results.jsonl
  (tmp_path / 'results.jsonl').write_text('')
  with pytest.raises(UsageError, match='holds no readable archbench record'):
    archbench.load(tmp_path)
  with pytest.raises(UsageError, match='at least one'):
    archbench.load()
  with pytest.raises(UsageError, match='got 3'):
    archbench.load(3)


def test_without_pandas_one_line_says_what_to_install(monkeypatch):
  monkeypatch.setitem(__import__('sys').modules, 'pandas', None)  # `import pandas` fails
  with pytest.raises(ImportError) as error:
    archbench.load(QUICK)
  assert str(error.value) == "archbench.load needs pandas: pip install 'archbench[analysis]'"
