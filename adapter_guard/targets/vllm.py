"""The vLLM target profile. (Placeholder: the table is filled in with its rules.)"""

from __future__ import annotations

from .model import Profile

PROFILE = Profile(
    name="vllm",
    display="vLLM",
    package="pip install vllm (GPU build; checked from its source)",
    latest="0.11.0",
    loads=frozenset({"peft-lora"}),
)
