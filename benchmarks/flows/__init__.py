"""What the commands do, as functions that tests call: run and resume a suite, reproduce a
paper or a recorded run, estimate a suite's runtime, list what is registered, rebuild a
report. Bad input raises core.UsageError; the CLI (cli.py) only parses flags, calls these
and prints."""
