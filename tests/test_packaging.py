"""Packaging: one import package (archbench.*), every package folder installed, the version
written once, and a regular (non-editable) install that runs from anywhere without the
source tree. (.ci/check-release builds the sdist and wheel, checks them with twine and runs
the wheel in a fresh environment.)"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

import archbench

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
TOPS = ('archs', 'data', 'benchmarks', 'common')  # the package folders, archbench.<top>
PYPROJECT = tomllib.loads((REPO / 'pyproject.toml').read_text())
SCHEMA_FILE = 'benchmarks/results/record.schema.json'


def test_every_package_folder_is_installed_under_archbench():
  project = PYPROJECT['tool']['setuptools']
  mapping = project['package-dir']
  assert mapping == {'archbench': 'src/archbench', **{f'archbench.{top}': top for top in TOPS}}
  on_disk = {
      'archbench.' + '.'.join(init.parent.relative_to(REPO).parts)
      for top in TOPS for init in (REPO / top).rglob('__init__.py')}
  assert set(project['packages']) == on_disk | {'archbench'}
  # src/ holds the top-level package's __init__.py alone: the rest lives in the folders.
  assert [p.relative_to(REPO).as_posix() for p in (REPO / 'src').rglob('*') if p.is_file()
          and '__pycache__' not in p.parts] == ['src/archbench/__init__.py']
  # The record's JSON Schema ships as package data (records.json_schema reads it).
  assert project['package-data'] == {'archbench.benchmarks.results': ['record.schema.json'],
                                     'archbench.data': ['bundled/*/*/*']}
  assert (REPO / SCHEMA_FILE).is_file()


def test_the_version_is_written_once():
  """archbench.__version__ is the one source: pyproject reads it (dynamic), and the
  changelog's latest release and CITATION.cff name the same number."""
  assert 'version' not in PYPROJECT['project']
  assert PYPROJECT['project']['dynamic'] == ['version']
  assert PYPROJECT['tool']['setuptools']['dynamic'] == {
      'version': {'attr': 'archbench.__version__'}}
  version = archbench.__version__
  assert re.fullmatch(r'\d+\.\d+\.\d+', version), version  # semantic: MAJOR.MINOR.PATCH
  releases = re.findall(r'^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$',
                        (REPO / 'CHANGELOG.md').read_text(), flags=re.M)
  assert releases and releases[0][0] == version, releases
  citation = (REPO / 'CITATION.cff').read_text()
  assert re.search(r'^cff-version: 1\.2\.0$', citation, flags=re.M)
  assert re.search(rf'^version: "?{re.escape(version)}"?$', citation, flags=re.M)
  assert re.search(rf'^date-released: "?{releases[0][1]}"?$', citation, flags=re.M)


@pytest.mark.slow
def test_regular_install_runs_from_anywhere(tmp_path):
  """`pip install .` (not editable) into a folder of its own, run from another directory:
  no generic top-level names, the version and the schema installed, runs written under the
  current directory, and no commit taken from whatever repository the install happens to
  sit in; the record validates against the installed schema and archbench.load reads it."""
  site = tmp_path / 'site'
  pip = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                        '--target', str(site), str(REPO)], capture_output=True, text=True,
                       timeout=600)
  assert pip.returncode == 0, pip.stderr[-3000:]
  installed = {p.name for p in site.iterdir() if not p.name.endswith('-info')}
  assert installed - {'bin'} == {'archbench'}, installed  # no other top-level name
  assert (site / f'archbench-{archbench.__version__}.dist-info').is_dir()
  assert (site / 'archbench' / SCHEMA_FILE).is_file()  # package data
  work = tmp_path / 'elsewhere'
  work.mkdir()
  env = {**ENV, 'PYTHONPATH': str(site)}

  def python(*args):
    return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)

  where = python('-c', 'import archbench, archbench.benchmarks as b; '
                 'print(archbench.__file__, b.__file__)')
  assert where.returncode == 0, where
  assert all(f.startswith(str(site)) for f in where.stdout.split()), where.stdout
  assert python('-c', 'import data').returncode != 0
  assert python('-c', 'import benchmarks').returncode != 0
  version = python('-m', 'archbench.benchmarks', '--version')
  assert version.stdout == f'archbench {archbench.__version__}\n', version
  run = python('-m', 'archbench.benchmarks', 'run', '--suite', 'smoke', '--archs', 'rnn',
               '--tasks', 'adding', '--workers', '1')
  assert run.returncode == 0, run.stderr[-3000:]
  (out,) = (work / 'results' / 'runs').iterdir()
  (record,) = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
  assert record['status'] == 'ok' and record['env']['git_commit'] is None
  # The installed copy's schema and loader, on the record it wrote.
  check = python('-c', f"""
import jsonschema, archbench
from archbench.benchmarks.results import records
assert records.__file__.startswith({str(site)!r}), records.__file__
(record,) = records.load_run({str(out)!r})
jsonschema.validate(record, records.json_schema(), jsonschema.Draft202012Validator)
frame = archbench.load({str(out)!r}, status='ok')
print(len(frame), frame.loc[0, 'metrics.eval/mse'] == record['metrics']['eval/mse'])
""")
  assert check.returncode == 0 and check.stdout.split() == ['1', 'True'], check.stderr[-3000:]
