"""The mlx-vlm target profile. (Placeholder: the table is filled in with its rules.)"""

from __future__ import annotations

from .model import Profile

PROFILE = Profile(
    name="mlx-vlm",
    display="mlx-vlm",
    package="pip install mlx-vlm",
    latest="0.7.10",
    loads=frozenset({"mlx-vlm", "mlx-vlm-legacy"}),
)
