"""Declared method options: names, types, minimums and JSON-ability are checked when a method
is built (``Method.validate_options``), before any image is restored."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceblur_bench.errors import UsageError
from faceblur_bench.registry import methods


def test_values_are_coerced_to_the_declared_type():
    wiener = methods.get("wiener")
    assert wiener(balance="0.5").options == {"balance": 0.5}
    assert methods.get("richardson-lucy")(num_iter=12.0).options == {"num_iter": 12}
    assert wiener().options == {}  # defaults are not written into the run identity


@pytest.mark.parametrize("name,opts,needle", [
    ("richardson-lucy", {"num_iter": 2.5}, "must be int"),
    ("richardson-lucy", {"num_iter": True}, "must be int"),
    ("wiener", {"balance": float("nan")}, "must be float"),
    ("blurred", {"x": 1}, "blurred takes no options"),
    ("dfpg", {"width": 8}, "unknown option 'width' for dfpg"),
])
def test_bad_options_are_usage_errors(name, opts, needle):
    with pytest.raises(UsageError) as exc:
        methods.get(name)(**opts)
    assert needle in str(exc.value)
    assert exc.value.exit_code == 2


def test_undeclared_options_must_still_be_json(tmp_path):
    from faceblur_bench.methods.base import Method

    class Plugin(Method):  # a plugin that declares no options: passed through, but stored as JSON
        def restore(self, blurred, meta=None):
            return blurred

    assert Plugin(anything=3).options == {"anything": 3}
    with pytest.raises(UsageError, match="cannot be stored as JSON"):
        Plugin(where=Path(tmp_path))
