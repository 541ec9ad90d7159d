"""`python -m pvcctl`: the same as the `pvcctl` console script."""

from pvcctl.cli import main

main()
