"""Imports every built-in metric module so that each registers itself."""

from . import pixel  # noqa: F401
from . import lpips_metric  # noqa: F401
from . import fid  # noqa: F401
from . import identity  # noqa: F401
from . import verification  # noqa: F401
from . import detection  # noqa: F401
from . import pyiqa_nr  # noqa: F401
from . import identity_dlib  # noqa: F401
from . import identity_consistency  # noqa: F401
