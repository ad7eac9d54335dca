"""The PEFT target profile. (Placeholder: the table is filled in with its rules.)"""

from __future__ import annotations

from .model import Profile

PROFILE = Profile(
    name="peft",
    display="PEFT",
    package="pip install peft",
    latest="0.21.2",
    loads=frozenset({"peft-lora"}),
)
