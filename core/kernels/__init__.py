"""Compiled kernels: pure functions over C-contiguous arrays and scalars.

Each module holds one family; a jitted `_name` sits beside its Python wrapper `name`, which
coerces dtypes once (so one specialisation compiles) and validates shapes. Kernels never raise.
"""

import numpy


class KernelArgumentError(ValueError):
    """A kernel wrapper was given an array of the wrong shape or a bad scalar."""

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")


def readonly(values: object, dtype: object) -> "numpy.ndarray":
    """`values` as a C-contiguous read-only array of `dtype` (no copy when it already is one).

    Kernel inputs all go through here, so arrays from frozen columns and freshly computed
    ones share one compiled specialisation.
    """
    arr = numpy.ascontiguousarray(values, dtype=dtype)
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr
