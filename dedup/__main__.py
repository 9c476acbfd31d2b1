"""``python -m dedup``: the same as the ``dedup`` command."""

from dedup.cli.main import main

main()
