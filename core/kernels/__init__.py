"""Compiled kernels: pure functions over C-contiguous arrays and scalars.

Each module holds one family; a jitted `_name` sits beside its Python wrapper `name`, which
coerces dtypes once (so one specialisation compiles) and validates shapes. Kernels never raise.
"""


class KernelArgumentError(ValueError):
    """A kernel wrapper was given an array of the wrong shape or a bad scalar."""

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")
