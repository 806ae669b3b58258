"""A stand-in for CuPy built on NumPy, to test the backend plumbing where no GPU exists.

It offers what :mod:`kernels.backend` and the sorted kernels use of CuPy (array functions,
``asnumpy``, ``cuda.runtime``, the memory pool), with CuPy's semantics where they differ from
NumPy's. Its ``argsort`` breaks ties against row order unless ``kind="stable"`` is stated, so a
kernel that depends on stability must say so. Arrays are NumPy arrays, so nothing here checks
device/host separation; only a real device does.
"""
from __future__ import annotations

import types

import numpy as np


class _Runtime:
    def __init__(self, devices: int, free: int, fail: str | None):
        self.devices, self.free, self.fail = devices, free, fail

    def getDeviceCount(self) -> int:  # noqa: N802 - CuPy's name
        if self.fail == "count":
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return self.devices

    def memGetInfo(self) -> tuple[int, int]:  # noqa: N802
        return self.free, 2 * self.free

    def getDeviceProperties(self, device: int) -> dict:  # noqa: N802
        return {"name": b"Fake GPU"}


class _Device:
    id = 0

    def synchronize(self) -> None:
        pass


class _Pool:
    def free_bytes(self) -> int:
        return 0


def argsort(values, axis=-1, kind=None):
    """CuPy's ``argsort``, except that ties come out in reverse row order unless ``kind="stable"``
    is stated: code that relies on stability without saying so fails here."""
    values = np.asarray(values)
    if kind == "stable" or values.ndim != 1:
        return np.argsort(values, axis=axis, kind="stable")
    if kind is not None:
        raise ValueError(f"cupy.argsort accepts kind=None or 'stable', not {kind!r}")
    return np.lexsort((-np.arange(len(values)), values))


def make(devices: int = 1, free: int = 2**30, fail: str | None = None) -> types.ModuleType:
    """A fake ``cupy`` module.

    Parameters
    ----------
    devices : int
        What ``getDeviceCount`` reports.
    free : int
        Free device memory ``memGetInfo`` reports.
    fail : {None, "count", "kernel", "wrong"}
        Break the device count, the test kernel, or the test kernel's answer.
    """
    module = types.ModuleType("cupy")

    def __getattr__(name):
        return getattr(np, name)

    module.__getattr__ = __getattr__
    module.cuda = types.SimpleNamespace(runtime=_Runtime(devices, free, fail), Device=_Device)
    module.get_default_memory_pool = _Pool
    module.asnumpy = np.asarray
    module.argsort = argsort

    def cumsum(values, *args, **kwargs):
        if fail == "kernel":
            raise RuntimeError("CUDA_ERROR_NO_BINARY_FOR_GPU")
        out = np.cumsum(values, *args, **kwargs)
        return out + 1 if fail == "wrong" else out

    module.cumsum = cumsum
    return module
