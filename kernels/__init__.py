"""Hot loops of screening, written against an array namespace ``xp``.

Kernels import nothing of the pipeline and never import a GPU library at module import time.
"""
from __future__ import annotations

import numpy as np


def namespace(array):
    """Array namespace of ``array``: :mod:`numpy` for NumPy arrays.

    Parameters
    ----------
    array : array-like

    Returns
    -------
    module

    Examples
    --------
    >>> import numpy as np
    >>> namespace(np.zeros(3)) is np
    True
    """
    module = type(array).__module__.split(".")[0]
    if module == "numpy":
        return np
    raise unsupported_namespace(module)


def unsupported_namespace(xp) -> NotImplementedError:
    """The error for an array namespace this build has no kernels for."""
    name = getattr(xp, "__name__", str(xp))
    return NotImplementedError(f"no kernels for array namespace {name!r}; this build runs on numpy")
