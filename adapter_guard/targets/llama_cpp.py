"""The llama.cpp target profile. (Placeholder: the table is filled in with its rules.)"""

from __future__ import annotations

from .model import Profile

PROFILE = Profile(
    name="llama.cpp",
    display="llama.cpp",
    package="llama.cpp's convert_lora_to_gguf.py",
    latest="b6000",
    tag_prefix="b",
    loads=frozenset({"peft-lora"}),
)
