"""Published results re-run with one command: one file per paper's table, whose
`get_config(size)` builds the reproduction at `full` size (the paper's budget, for an
accelerator) or `cpu` (a reduced budget for a 2-core CPU that checks the paper's
qualitative claims). `archbench reproduce --list` lists them; `archbench reproduce NAME`
runs one and writes its table (benchmarks/results/reproduction.py)."""
