"""The harness, grouped by role:

  cli.py       the command line
  config.py    suites as ml_collections configs (suites/ holds one file each), resolved
               into cells; plugins.py loads users' architectures and tasks
  harness/     model assembly, training and evaluation, generation, checkpoints, runner
  probes/      long-range dependency probes
  measure/     the one timer, compile-ahead, device peaks
  results/     records, summaries, plots, comparison of runs
  core.py      the vocabulary all of them share: Cell, TrainConfig, Execution, errors

core.py imports none of the others; archs/ and data/ never import the harness. Every cell
of every suite goes through `harness.runner.run_cell`.
"""
