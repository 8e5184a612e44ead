"""``python -m bfly_cli``: the ``bfly`` command (when the console script is not on PATH)."""

from .cli import main

main()
