"""What every study's plots share (matplotlib with the Agg backend, files only): the pyplot
module, the tail of a line plot, and the palette that keeps committed PNGs small. Each study
draws its own plots (long_range.py, length_generalization.py, scaling.py, curves.py)."""
from __future__ import annotations

import pathlib

DPI = 110  # the line plots' resolution


def pyplot():
  """matplotlib.pyplot on the Agg backend, imported only when a plot is drawn."""
  import matplotlib
  matplotlib.use('Agg')  # files only, no display
  import matplotlib.pyplot as plt
  return plt


def save(plt, fig, ax, path: pathlib.Path) -> None:
  """Grid, legend, tight layout, written at the plots' resolution, and closed."""
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=DPI)
  plt.close(fig)


def shrink_png(path: pathlib.Path) -> None:
  """Re-save with a 64-colour palette: the plot's dozen colours and their anti-aliased
  edges look the same at a quarter of the file size (reference runs are committed)."""
  from PIL import Image  # matplotlib's own dependency
  with Image.open(path) as image:
    small = image.convert('RGB').convert('P', palette=Image.Palette.ADAPTIVE, colors=64)
  small.save(path, optimize=True)
