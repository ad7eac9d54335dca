"""What a runtime target profile is made of: plain data, and the few pure functions that read it.

A profile (``targets/<runtime>.py``) is a table of rules. Each rule says which
versions of the runtime it applies to, which file of the runtime's source it was
read from, and a pure check that looks at what the lint already read (the config,
the detected format, the tensor shapes) and returns verdicts. The engine turns a
verdict into a Finding named after the target, so a target finding never changes
what the format rules say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..findings import Fix, JsonPath
from ..readers import AdapterFiles

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """``"0.18.2"`` -> ``(0, 18, 2)``; a leading ``v`` (or llama.cpp's ``b``, as in ``b6000``) is allowed.
    Raises ValueError."""
    text = text.strip()
    if text[:1] in ("v", "V", "b"):
        text = text[1:]
    parts = text.split(".")
    if not text or not all(p.isdigit() for p in parts) or len(parts) > 4:
        raise ValueError(f"{text!r} is not a release version (digits and dots, like 0.19 or 0.18.2)")
    return tuple(int(p) for p in parts)


def format_version(version: Version) -> str:
    return ".".join(str(p) for p in version)


def _padded(a: Version, b: Version) -> tuple[Version, Version]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


_COMPARATORS: dict[str, Callable[[Version, Version], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


def in_range(version: Version, spec: str) -> bool:
    """Whether ``version`` is in ``spec``: ``"*"`` or comparators joined by commas (``">=0.6,<0.11"``).

    A shorter version is padded with zeros: ``0.13`` is ``0.13.0``.
    """
    if spec.strip() == "*":
        return True
    for clause in spec.split(","):
        clause = clause.strip()
        op = next(o for o in (">=", "<=", "==", ">", "<", "") if clause.startswith(o))
        bound = parse_version(clause[len(op):])
        a, b = _padded(version, bound)
        if not _COMPARATORS[op or "=="](a, b):
            return False
    return True


def check_range(spec: str) -> str:
    """``spec`` unchanged if it parses (for the profile tables' own test), else ValueError."""
    in_range((0,), spec)
    return spec


@dataclass(frozen=True)
class Verdict:
    """One thing a check found: what fails and what to do, in one message."""

    message: str
    json_path: JsonPath | None = None
    #: Only where the files prove the value (e.g. ``lora_layers`` spelled from ``num_layers``).
    fix: Fix | None = None


@dataclass(frozen=True)
class Context:
    """What a target check may look at: everything already read for the format rules."""

    config: dict[str, Any]
    #: The detected format (``formats.detect.AdapterFormat`` value: "mlx-lm", "peft-lora", ...).
    format: str
    files: AdapterFiles
    #: The target version the rules are checked for (the profile's ``latest`` when none was given).
    version: Version
    #: The target's options (``vllm:max_lora_rank=64``), defaults filled in.
    options: dict[str, int]

    def shapes(self, name: str) -> dict[str, tuple[int, ...]] | None:
        """The tensor shapes of weights file ``name``, or None when it is absent or unreadable."""
        weights = self.files.weights.get(name)
        return weights.shapes if weights is not None else None


@dataclass(frozen=True)
class TargetRule:
    """One row of a profile's table."""

    #: The finding's code, registered in ``adapter_guard.registry`` (AG9xx).
    code: str
    #: The runtime versions the rule applies to (``in_range`` syntax).
    versions: str
    #: Where in the runtime's source the behaviour was read: file, release tag and function.
    source: str
    #: A link to those lines at that tag.
    url: str
    #: The check: verdicts for one adapter (pure).
    check: Callable[[Context], Iterable[Verdict]]
    #: One line for docs/targets.md: what fails on the runtime.
    fails: str


@dataclass(frozen=True)
class Profile:
    name: str  # as given to --target: "vllm", "llama.cpp"
    display: str  # in messages: "vLLM"
    #: Where the runtime comes from, for the docs ("pip install vllm", "llama.cpp's convert_lora_to_gguf.py").
    package: str
    #: The newest release the table was checked against: the version used when --target names none.
    latest: str
    #: The formats (AdapterFormat values) the runtime can load at all; the others get ``wrong_format``.
    loads: frozenset[str]
    #: The rule that reports an adapter of a format the runtime cannot load (its code; see ``loads``).
    wrong_format: TargetRule | None = None
    rules: tuple[TargetRule, ...] = ()
    #: ``:key=value`` options the target takes, with their defaults (None: unset).
    options: dict[str, int | None] = field(default_factory=dict)
    #: Put before a version in messages and labels: llama.cpp's releases are build tags (``b6000``).
    tag_prefix: str = ""
    #: One paragraph for docs/targets.md: what the profile models and how its verdicts were confirmed.
    notes: str = ""


@dataclass(frozen=True)
class Target:
    """A parsed ``--target``: which profile, which version, which options."""

    profile: Profile
    #: As written by the user, None when no version was given.
    version: Version | None
    options: dict[str, int]

    @property
    def effective_version(self) -> Version:
        return self.version if self.version is not None else parse_version(self.profile.latest)

    @property
    def label(self) -> str:
        """How the target is named in findings, the matrix and JSON: ``vllm@0.11:max_lora_rank=64``."""
        text = self.profile.name
        if self.version is not None:
            text += "@" + self.profile.tag_prefix + format_version(self.version)
        if self.options:
            text += ":" + ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text

    @property
    def describe(self) -> str:
        """The runtime and version in words, for messages: ``vLLM 0.11``, ``mlx-lm 0.32.2 (latest checked)``."""
        if self.version is not None:
            return f"{self.profile.display} {self.profile.tag_prefix}{format_version(self.version)}"
        return f"{self.profile.display} {self.profile.latest}"

    def applicable(self, versions: Iterable[TargetRule]) -> list[TargetRule]:
        version = self.effective_version
        return [rule for rule in versions if in_range(version, rule.versions)]
