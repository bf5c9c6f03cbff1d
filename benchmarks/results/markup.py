"""The Markdown that archbench writes (summary.md, comparison.md), set again as LaTeX tables
and as an HTML fragment.

Only the subset this project writes is read: `#` headings, paragraphs, `- ` lists, pipe
tables (records.markdown_table, with `\\|` for a `|` inside a cell), and inline `code`,
**bold** and *emphasis*. Reading the Markdown back, rather than building each table a
second time, keeps one code path per table: LaTeX and HTML show what summary.md shows.

Every piece of text is escaped for its format (html.escape; LaTeX's special characters)
after the inline markup is split off, so a value in a record (a plug-in's name, an error
message) can only ever be text, never markup.
"""
from __future__ import annotations

import dataclasses
import html
import re


@dataclasses.dataclass
class Block:
  """kind: 'heading' (level, text), 'paragraph' (text), 'list' (items) or 'table'
  (header, rows)."""
  kind: str
  text: str = ''
  level: int = 0
  items: list[str] = dataclasses.field(default_factory=list)
  header: list[str] = dataclasses.field(default_factory=list)
  rows: list[list[str]] = dataclasses.field(default_factory=list)


def _cells(line: str) -> list[str]:
  cells = re.split(r'(?<!\\)\|', line.strip())[1:-1]  # drop what is outside the outer pipes
  return [c.strip().replace('\\|', '|') for c in cells]


def _is_rule(line: str) -> bool:
  return line.startswith('|') and set(line.strip()) <= set('|-: ')


def blocks(text: str) -> list[Block]:
  """The blocks of a Markdown text, in order; consecutive list items (with or without
  blank lines between them) form one list."""
  out: list[Block] = []
  lines = text.splitlines()
  i = 0
  while i < len(lines):
    line = lines[i]
    if not line.strip():
      i += 1
    elif line.startswith('#'):
      level = len(line) - len(line.lstrip('#'))
      out.append(Block('heading', text=line[level:].strip(), level=level))
      i += 1
    elif line.startswith('|') and i + 1 < len(lines) and _is_rule(lines[i + 1]):
      header, i = _cells(line), i + 2
      rows = []
      while i < len(lines) and lines[i].startswith('|'):
        rows.append(_cells(lines[i]))
        i += 1
      out.append(Block('table', header=header, rows=rows))
    elif line.startswith('- '):
      if not (out and out[-1].kind == 'list'):
        out.append(Block('list'))
      out[-1].items.append(line[2:].strip())
      i += 1
    else:
      paragraph = []
      while i < len(lines) and lines[i].strip() and not lines[i].startswith(('#', '|', '- ')):
        paragraph.append(lines[i].strip())
        i += 1
      out.append(Block('paragraph', text=' '.join(paragraph)))
  return out


def _fit(row: list[str], block: Block) -> list[str]:
  """A row cut or padded to the header's width."""
  return (row + [''] * len(block.header))[:len(block.header)]


def _has_words(cell: str) -> bool:
  """A letter in the cell other than a number's exponent (3.28e-06) or a count of seeds
  (n=3)."""
  cell = re.sub(r'\bn=\d+', '', cell)
  return bool(re.search('[A-Za-z]', re.sub(r'(?<=\d)[eE][+-]?(?=\d)', '', cell)))


def numeric_columns(block: Block) -> list[bool]:
  """Per column: True when its cells are numbers (with ±, ✓, — and the like), to align it
  right. The first column names the row."""
  return [i > 0 and not any(_has_words(row[i]) for row in block.rows if i < len(row))
          for i in range(len(block.header))]


_INLINE = re.compile(r'(`[^`\n]+`|\*\*[^*\n]+\*\*|\*[^*\s][^*\n]*\*)')


def _inline(text: str, escape, code, bold, emphasis) -> str:
  """Inline Markdown to a format: the markup is split off first, then every piece of text
  is escaped, so text can never close or open a tag of the output."""
  out = []
  for i, piece in enumerate(_INLINE.split(text)):
    if i % 2 == 0:
      out.append(escape(piece))
    elif piece.startswith('`'):
      out.append(code(escape(piece[1:-1])))
    elif piece.startswith('**'):
      out.append(bold(escape(piece[2:-2])))
    else:
      out.append(emphasis(escape(piece[1:-1])))
  return ''.join(out)


# ---------------------------------------------------------------------------------------
# HTML.

def inline_html(text: str) -> str:
  return _inline(text, lambda s: html.escape(s, quote=True), lambda s: f'<code>{s}</code>',
                 lambda s: f'<strong>{s}</strong>', lambda s: f'<em>{s}</em>')


def _html_cell(tag: str, numeric: bool, text: str) -> str:
  return f'<{tag}{" class=num" if numeric else ""}>{inline_html(text)}</{tag}>'


def to_html(text: str, shift: int = 0) -> str:
  """An HTML fragment of a Markdown text; headings `shift` levels deeper (at most h6)."""
  parts = []
  for b in blocks(text):
    if b.kind == 'heading':
      level = min(b.level + shift, 6)
      parts.append(f'<h{level}>{inline_html(b.text)}</h{level}>')
    elif b.kind == 'paragraph':
      parts.append(f'<p>{inline_html(b.text)}</p>')
    elif b.kind == 'list':
      parts.append('<ul>' + ''.join(f'<li>{inline_html(item)}</li>' for item in b.items)
                   + '</ul>')
    else:
      numeric = numeric_columns(b)
      head = ''.join(_html_cell('th', n, h) for n, h in zip(numeric, b.header))
      body = ''.join('<tr>' + ''.join(_html_cell('td', n, c) for n, c in zip(numeric, _fit(row, b)))
                     + '</tr>' for row in b.rows)
      parts.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                   f'<tbody>{body}</tbody></table></div>')
  return '\n'.join(parts)


# ---------------------------------------------------------------------------------------
# LaTeX.

# One pass over the text (str.translate), so that no replacement is escaped again. The
# symbols the summaries use become math or text commands that every LaTeX engine sets; <, >
# and | as text commands, since the default OT1 font encoding prints other glyphs for them.
_LATEX = str.maketrans({
    '\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#', '_': r'\_',
    '{': r'\{', '}': r'\}', '~': r'\textasciitilde{}', '^': r'\textasciicircum{}',
    '<': r'\textless{}', '>': r'\textgreater{}', '|': r'\textbar{}',
    '±': r'$\pm$', '↑': r'$\uparrow$', '↓': r'$\downarrow$', '✓': r'\checkmark{}',
    '≥': r'$\geq$', '≤': r'$\leq$', '—': '---', '–': '--', '×': r'$\times$',
    '→': r'$\to$', 'σ': r'$\sigma$', '·': r'$\cdot$', '∝': r'$\propto$', '²': r'$^2$',
    '‖': r'$\|$', '∂': r'$\partial$', '‡': r'\ddag{}', '−': r'$-$',
})


def latex_escape(text: str) -> str:
  return text.translate(_LATEX)


def inline_latex(text: str) -> str:
  return _inline(text, latex_escape, lambda s: rf'\texttt{{{s}}}', lambda s: rf'\textbf{{{s}}}',
                 lambda s: rf'\emph{{{s}}}')


def _label(caption: str) -> str:
  return 'tab:' + (re.sub(r'[^a-z0-9]+', '-', caption.lower()).strip('-') or 'table')


def latex_tables(text: str, preamble: str = '') -> str:
  """Every table of a Markdown text as a booktabs `table`, captioned with the heading
  above it (and the paragraph between them, which explains its symbols). `preamble`:
  comment lines to put first."""
  out = [f'% {line}' for line in preamble.splitlines()]
  out += ['% Needs \\usepackage{booktabs} and \\usepackage{amssymb} (for \\checkmark).', '']
  heading, note, labels = '', '', set()
  for b in blocks(text):
    if b.kind == 'heading':
      heading, note = b.text, ''
    elif b.kind == 'paragraph':
      note = b.text
    elif b.kind == 'table':
      label = _label(heading)
      while label in labels:
        label += '-2'
      labels.add(label)
      caption = inline_latex(heading) + (f'. {inline_latex(note)}' if note else '')
      columns = ''.join('r' if n else 'l' for n in numeric_columns(b))
      row = lambda cells: '    ' + ' & '.join(inline_latex(c) for c in cells) + r' \\'
      out += [r'\begin{table}[htbp]', r'  \centering', r'  \small',
              rf'  \caption[{{{inline_latex(heading)}}}]{{{caption}}}', rf'  \label{{{label}}}',
              rf'  \begin{{tabular}}{{{columns}}}', r'    \toprule', row(b.header),
              r'    \midrule', *(row(_fit(r, b)) for r in b.rows), r'    \bottomrule',
              r'  \end{tabular}', r'\end{table}', '']
      note = ''
  return '\n'.join(out)
