"""The mlx-lm target profile. (Placeholder: the table is filled in with its rules.)"""

from __future__ import annotations

from .model import Profile

PROFILE = Profile(
    name="mlx-lm",
    display="mlx-lm",
    package="pip install mlx-lm",
    latest="0.32.2",
    loads=frozenset({"mlx-lm", "mlx-lm-pre-0.19"}),
)
