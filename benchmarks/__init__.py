"""The harness: model assembly, training and evaluation, timing, suites, results,
reports and the CLI. Every cell of every suite goes through `runner.run_cell`."""
