"""faceblur-bench: the benchmark and evaluation harness for face deblurring.

The one flow: split (samples on disk) -> method.restore() -> metrics -> results store -> tables.
Library first: everything the CLI does is a function importable from here.
"""

import os as _os

__version__ = "0.1.0"

# OpenMP threads that wait for work sleep instead of spinning (libgomp reads this once, when torch
# loads, so it is set here, before any torch import). The harness runs thousands of small torch
# ops per image (MTCNN's pyramid and per-box resizes, SSIM windows); with the default spin-wait a
# thread of every op spins through its time slice whenever another process holds a core, and on a
# shared 2-core machine MTCNN ran 5-15x slower. Waiting does not change how work is split between
# threads, so every value is bit-identical (benchmarks/bench_face_analysis.py measures both).
# An explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
