"""``python -m faceblur_bench.train`` / ``torchrun -m faceblur_bench.train``: the ``train`` commands.

Same options as ``faceblur-bench train``; this entry exists so ``torchrun`` can launch one
process per GPU (``torchrun --nproc_per_node N -m faceblur_bench.train sappgan ...``).
"""

from __future__ import annotations


def main() -> None:
    from ..cli import run_app
    from ..cli.train import train_app

    run_app(train_app)


if __name__ == "__main__":
    main()
