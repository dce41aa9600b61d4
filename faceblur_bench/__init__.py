"""faceblur-bench: the benchmark and evaluation harness for face deblurring.

The one flow: split (samples on disk) -> method.restore() -> metrics -> results store -> tables.
Library first: everything the CLI does is a function importable from here.
"""

__version__ = "0.1.0"
