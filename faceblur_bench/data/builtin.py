"""Imports every built-in split module so that each registers itself."""

from . import demo  # noqa: F401
from . import mspl  # noqa: F401
from . import real  # noqa: F401
from . import shen  # noqa: F401
from . import sr  # noqa: F401
from . import vw300  # noqa: F401
from . import photos  # noqa: F401
