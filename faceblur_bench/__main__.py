"""``python -m faceblur_bench`` = the ``faceblur-bench`` command."""

from .cli import main

main()
