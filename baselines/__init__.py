"""Non-paper baselines. They register through the ``faceblur_bench.methods`` entry-point group
(see pyproject.toml), exactly as a third-party plugin package would."""
