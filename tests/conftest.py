"""Shared test configuration: Hypothesis profiles.

`dev` (default) keeps a local run quick and draws new examples every run; `ci` (chosen when
CI is set, or with HYPOTHESIS_PROFILE=ci) runs more examples from a fixed seed, so a CI
verdict is repeatable. Neither has a deadline: timings are never asserted.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
