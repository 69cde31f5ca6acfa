"""``python -m skube``: the same command line as the ``skube`` script."""
from .cli import main

main()
