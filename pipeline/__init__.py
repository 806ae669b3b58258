"""chipscreen: screening of AI-chip shipment ledgers against U.S. export controls.

Data flows one way: ``flows`` → ``pipeline`` → ``kernels``.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chipscreen")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
