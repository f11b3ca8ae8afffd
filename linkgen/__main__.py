"""`python -m linkgen` runs the `linkgen` command."""

from linkgen.cli import main

main()
