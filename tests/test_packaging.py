"""Packaging: one import namespace (archbench.*), every package folder installed, and a
regular (non-editable) install that runs from anywhere without the source tree."""
import json
import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
TOPS = ('archs', 'data', 'benchmarks', 'common')  # the package folders, archbench.<top>


def test_every_package_folder_is_installed_under_archbench():
  project = tomllib.loads((REPO / 'pyproject.toml').read_text())['tool']['setuptools']
  mapping = project['package-dir']
  assert mapping == {f'archbench.{top}': top for top in TOPS}
  on_disk = {
      'archbench.' + '.'.join(init.parent.relative_to(REPO).parts)
      for top in TOPS for init in (REPO / top).rglob('__init__.py')}
  assert set(project['packages']) == on_disk
  assert all(name.startswith('archbench.') for name in project['packages'])


@pytest.mark.slow
def test_regular_install_runs_from_anywhere(tmp_path):
  """`pip install .` (not editable) into a folder of its own, run from another directory:
  no generic top-level names, runs written under the current directory, and no commit
  taken from whatever repository the install happens to sit in."""
  site = tmp_path / 'site'
  pip = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                        '--target', str(site), str(REPO)], capture_output=True, text=True,
                       timeout=600)
  assert pip.returncode == 0, pip.stderr[-3000:]
  installed = {p.name for p in site.iterdir() if not p.name.endswith('-info')}
  assert installed - {'bin'} == {'archbench'}, installed  # no other top-level name
  work = tmp_path / 'elsewhere'
  work.mkdir()
  env = {**ENV, 'PYTHONPATH': str(site)}

  def python(*args):
    return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)

  where = python('-c', 'import archbench.benchmarks as b; print(b.__file__)')
  assert where.returncode == 0 and where.stdout.startswith(str(site)), where
  assert python('-c', 'import data').returncode != 0
  assert python('-c', 'import benchmarks').returncode != 0
  run = python('-m', 'archbench.benchmarks', 'run', '--suite', 'smoke', '--archs', 'rnn',
               '--tasks', 'adding', '--workers', '1')
  assert run.returncode == 0, run.stderr[-3000:]
  (out,) = (work / 'results' / 'runs').iterdir()
  (record,) = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
  assert record['status'] == 'ok' and record['env']['git_commit'] is None

