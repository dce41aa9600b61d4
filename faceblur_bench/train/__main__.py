"""``python -m faceblur_bench.train`` / ``torchrun -m faceblur_bench.train``: the ``train`` commands.

Same options as ``faceblur-bench train``; this entry exists so ``torchrun`` can launch one
process per GPU (``torchrun --nproc_per_node N -m faceblur_bench.train sappgan ...``).
"""

from __future__ import annotations

import sys


def main() -> None:
    import click

    from ..cli.train import train_app
    from ..errors import FaceblurError

    try:
        train_app(standalone_mode=False)
    except FaceblurError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"fix: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2)


if __name__ == "__main__":
    main()
