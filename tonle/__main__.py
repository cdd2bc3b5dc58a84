"""``python -m tonle``: the same as the ``tonle`` command."""

from tonle.cli import main

main()
