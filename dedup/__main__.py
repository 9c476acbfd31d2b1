"""``python -m dedup``: the same as the ``dedup`` command."""

from dedup.cli import main

main()
