"""Writing files whole or not at all, and where archbench caches what it solved or measured.

Every file archbench writes in place of an earlier one (reports, plans, reproduction
verdicts, caches) goes through `write_atomically`, so a reader, a concurrent writer or a
killed run never leaves or sees a half-written file.
"""
from __future__ import annotations

import os
import pathlib
import secrets

CACHE_ENV = 'ARCHBENCH_CACHE'


def cache_dir() -> pathlib.Path:
  """$ARCHBENCH_CACHE, else ~/.cache/archbench. An empty value counts as unset: it must
  not turn into a relative path, the current directory."""
  return pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / '.cache' / 'archbench')


def write_atomically(path: pathlib.Path, content: bytes | str) -> None:
  """Write `content` (text as UTF-8) to a temporary file beside `path`, then rename it into
  place: concurrent writers (processes or threads) may replace each other's file, never
  tear it. The file gets the usual permissions (0666 less the umask)."""
  path = pathlib.Path(path)
  data = content.encode('utf-8') if isinstance(content, str) else content
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f'{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp')
  try:
    with open(tmp, 'xb') as f:  # a name of its own: no other writer opens it
      f.write(data)
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)  # gone after a successful rename
