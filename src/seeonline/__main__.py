"""``python -m seeonline``: the same as the ``seeonline`` command."""

from seeonline.cli import main

main()
