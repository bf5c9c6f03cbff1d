"""common/files.py: the one atomic writer and the one cache directory, and the writers that
use them (the width cache, the data cache, the reports)."""
import json
import os
import pathlib
import stat

import pytest

from archbench.archs import registry
from archbench.common import files
from archbench.data import cache as data_cache


@pytest.fixture
def home(monkeypatch, tmp_path):
  """A home directory of its own, and a working directory elsewhere."""
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  (tmp_path / 'cwd').mkdir()
  monkeypatch.chdir(tmp_path / 'cwd')
  return tmp_path / 'home'


@pytest.mark.parametrize('value', [None, ''])
def test_an_empty_archbench_cache_is_unset(monkeypatch, home, value):
  if value is None:
    monkeypatch.delenv(files.CACHE_ENV, raising=False)
  else:
    monkeypatch.setenv(files.CACHE_ENV, value)
  assert files.cache_dir() == home / '.cache' / 'archbench'
  assert data_cache.cache_path('x', {}).parent == home / '.cache' / 'archbench'


def test_the_variable_moves_the_cache(monkeypatch, tmp_path):
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / 'elsewhere'))
  assert files.cache_dir() == tmp_path / 'elsewhere'


def test_width_cache_with_an_empty_variable_goes_home_not_into_the_cwd(monkeypatch, home):
  monkeypatch.setenv(files.CACHE_ENV, '')
  registry._write_cache('rnn:1000:digest', [8, 990])
  assert json.loads((home / '.cache' / 'archbench' / 'widths.json').read_text()) == {
      'rnn:1000:digest': [8, 990]}
  assert list(pathlib.Path.cwd().iterdir()) == []  # nothing in the working directory
  assert registry._read_cache() == {'rnn:1000:digest': [8, 990]}


def test_write_atomically_text_bytes_and_permissions(tmp_path):
  path = tmp_path / 'new' / 'summary.md'
  files.write_atomically(path, 'α ✓\n')  # text as UTF-8, parent folders made
  assert path.read_bytes() == 'α ✓\n'.encode()
  files.write_atomically(path, b'\x00\x01')
  assert path.read_bytes() == b'\x00\x01'
  assert [p.name for p in path.parent.iterdir()] == ['summary.md']  # no temporary left
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
  path = tmp_path / 'plan.json'
  files.write_atomically(path, '{"old": 1}')

  def fail(*_):
    raise OSError('disk full')
  monkeypatch.setattr(files.os, 'replace', fail)
  with pytest.raises(OSError, match='disk full'):
    files.write_atomically(path, '{"new": 2}')
  assert path.read_text() == '{"old": 1}'
  assert [p.name for p in tmp_path.iterdir()] == ['plan.json']
