"""Fill the README's results tables from the committed runs, or check that they match.

    python tools/readme_tables.py [--check] [--root DIR] [FILE ...]

In each FILE (default: README.md, results/README.md and every page of the manual,
docs/**/*.md, relative to the repository root; a FILE may be such a glob pattern) every
block

    <!-- archbench:table SOURCE -->
    ...
    <!-- /archbench:table -->

is replaced by the Markdown of SOURCE, a generated file of a committed run named by its
path from the repository root (`results/quick-cpu/summary.md`, `results/<name>/
reproduction.md`, `results/perf-cpu/vs_torch.md`). `SOURCE#HEADING` takes one section of
it: the lines under the heading whose text is HEADING, up to the next heading of any level
(so a block never brings headings into the page around it). HEADING is matched without
regard to case or runs of spaces, first against whole headings, then as a part of exactly
one heading: `results/lrd-cpu/summary.md#longest solved length` picks the section under
`## Long-range dependencies: longest solved length`. Without `#HEADING` the whole file is
taken as it is. A source that is not Markdown (`benchmarks/results/record.schema.json`) is
taken whole, as a fenced code block in its language (its suffix: ```json). The markers
stand alone on their lines; the text between them belongs to the command and is
overwritten.

The tables are taken from the committed `summary.md` files rather than recomputed from
`results.jsonl`: `archbench report DIR` already generates those from the records (and
tests/test_readme_tables.py checks that the committed ones are what it would write now),
so copying them keeps one generator of each table, works the same for every other
generated file (reproductions, the PyTorch comparison), and needs neither JAX nor the
records' code to run.

`--check` writes nothing: it exits 1, with one line naming each stale block, when a file
differs from what the command would write (a hand edit, a re-run not yet copied in), and
0 when all are current. A marker naming a missing file or heading, or a marker left
unclosed, is a usage error: one line on stderr, exit 2.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

from archbench.common.files import write_atomically

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the repository root (the package dir)
DEFAULT_FILES = ('README.md', 'results/README.md', 'docs/**/*.md')
COMMAND = 'python tools/readme_tables.py'  # its command line (not installed)

OPEN = re.compile(r'^<!-- archbench:table (?P<source>.*?) -->\s*$')
CLOSE = '<!-- /archbench:table -->'
_MARKER_START = '<!-- archbench:table'
_HEADING = re.compile(r'^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$')
_FENCE = re.compile(r'^\s*(```|~~~)')
_GLOB = re.compile(r'[*?\[]')


class UsageError(Exception):
  """Bad input: reported as one line, exit code 2."""


@dataclasses.dataclass(frozen=True)
class Block:
  source: str      # as written in the marker
  line: int        # 1-based line of the opening marker
  start: int       # index of the opening marker line
  end: int         # index of the closing marker line


def _norm(text: str) -> str:
  return ' '.join(text.split()).casefold()


def headings(lines: list[str]) -> list[tuple[int, int, str]]:
  """(line index, level, text) of each ATX heading outside fenced code."""
  found, fenced = [], False
  for i, line in enumerate(lines):
    if _FENCE.match(line):
      fenced = not fenced
      continue
    m = None if fenced else _HEADING.match(line)
    if m:
      found.append((i, len(m.group(1)), m.group(2)))
  return found


def select_section(text: str, heading: str, where: str) -> str:
  """The lines under `heading` (see the module doc for the matching), up to the next
  heading of any level, without blank lines at either end."""
  lines = text.splitlines()
  found = headings(lines)
  want = _norm(heading)
  if not want:
    raise UsageError(f'{where}: empty section after "#"')
  matches = [h for h in found if _norm(h[2]) == want]
  if not matches:
    matches = [h for h in found if want in _norm(h[2])]
  if len(matches) != 1:
    names = '; '.join(repr(h[2]) for h in (matches or found)) or 'none'
    what = 'is ambiguous' if matches else 'matches no heading'
    raise UsageError(f'{where}: section {heading!r} {what} (headings: {names})')
  index = matches[0][0]
  after = [i for i, _, _ in found if i > index]
  body = '\n'.join(lines[index + 1:after[0] if after else len(lines)]).strip('\n')
  if not body.strip():
    raise UsageError(f'{where}: section {heading!r} is empty')
  return body


def render(source: str, root: pathlib.Path, where: str = '') -> str:
  """The Markdown a block with this SOURCE holds, from the file under `root`."""
  where = where or source
  path_text, hashed, section = source.partition('#')
  path_text = path_text.strip()
  if not path_text:
    raise UsageError(f'{where}: the marker names no source file')
  path = pathlib.PurePosixPath(path_text)
  if path.is_absolute() or '..' in path.parts:
    raise UsageError(f'{where}: source {path_text!r} must be a path inside the repository')
  file = root / path
  if not file.is_file():
    raise UsageError(f'{where}: source file {path_text} does not exist')
  text = file.read_text(encoding='utf-8')
  if path.suffix != '.md':  # a schema, a config: shown whole, as code
    if hashed:
      raise UsageError(f'{where}: source {path_text} is not Markdown: it has no sections')
    if '```' in text:
      raise UsageError(f'{where}: source {path_text} holds ``` itself')
    return f'```{path.suffix.lstrip(".")}\n{text.strip(chr(10))}\n```'
  body = select_section(text, section, where) if hashed else text.strip('\n')
  if _MARKER_START in body or CLOSE in body:
    raise UsageError(f'{where}: source {path_text} holds archbench:table markers itself')
  return body


def find_blocks(text: str, name: str) -> list[Block]:
  blocks, lines, open_at, fenced = [], text.splitlines(), None, False
  for i, line in enumerate(lines):
    stripped = line.strip()
    if open_at is None and _FENCE.match(line):
      fenced = not fenced  # markers shown in a code example are not blocks
      continue
    if fenced:
      continue
    if stripped.startswith(_MARKER_START):
      m = OPEN.match(stripped)
      if not m:
        raise UsageError(f'{name}:{i + 1}: malformed marker {stripped!r}')
      if open_at is not None:
        raise UsageError(f'{name}:{i + 1}: a marker opens inside the block opened on line '
                         f'{open_at + 1}')
      open_at = i
    elif stripped == CLOSE:
      if open_at is None:
        raise UsageError(f'{name}:{i + 1}: {CLOSE} without an opening marker')
      source = OPEN.match(lines[open_at].strip()).group('source').strip()
      blocks.append(Block(source, open_at + 1, open_at, i))
      open_at = None
  if open_at is not None:
    raise UsageError(f'{name}:{open_at + 1}: marker never closed with {CLOSE}')
  return blocks


def rewrite(text: str, root: pathlib.Path, name: str) -> tuple[str, list[Block]]:
  """`text` with every block regenerated, and the blocks whose content changed."""
  lines = text.splitlines()
  out, stale, last = [], [], 0
  for block in find_blocks(text, name):
    body = render(block.source, root, where=f'{name}:{block.line}')
    new = ['', *body.split('\n'), '']
    if lines[block.start + 1:block.end] != new:
      stale.append(block)
    out += lines[last:block.start + 1] + new
    last = block.end
  out += lines[last:]
  result = '\n'.join(out)
  if text.endswith('\n'):
    result += '\n'
  return result, stale


def expand(root: pathlib.Path, files) -> list[str]:
  """The files named, relative to `root`, each glob pattern replaced by the files it
  matches (sorted); a pattern that matches none is a usage error, as a missing file is."""
  names = []
  for name in files:
    if not _GLOB.search(name):
      names.append(name)
      continue
    matches = sorted(p.relative_to(root).as_posix() for p in root.glob(name) if p.is_file())
    if not matches:
      raise UsageError(f'{name}: matches no file under {root}')
    names += matches
  return list(dict.fromkeys(names))


def stale_blocks(root: pathlib.Path = ROOT, files=DEFAULT_FILES) -> list[str]:
  """'FILE:LINE (SOURCE)' for each block that differs from what would be generated."""
  found = []
  for name in expand(root, files):
    text = _read(root, name)
    found += [f'{name}:{b.line} ({b.source})' for b in rewrite(text, root, name)[1]]
  return found


def update(root: pathlib.Path = ROOT, files=DEFAULT_FILES) -> dict[str, tuple[int, int]]:
  """Regenerate every block in place; {file: (blocks, blocks changed)}."""
  texts = {name: _read(root, name) for name in expand(root, files)}
  # Render everything before writing anything: a bad marker leaves every file untouched.
  results = {name: rewrite(text, root, name) for name, text in texts.items()}
  counts = {}
  for name, (new, stale) in results.items():
    if new != texts[name]:
      write_atomically(root / name, new)
    counts[name] = (len(find_blocks(new, name)), len(stale))
  return counts


def _read(root: pathlib.Path, name: str) -> str:
  path = root / name
  if not path.is_file():
    raise UsageError(f'{name}: no such file under {root}')
  return path.read_text(encoding='utf-8')
