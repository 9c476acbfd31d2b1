"""The ``dedup`` command: the click group, one module per group of commands, the terminal views."""
