"""Settings: the plain object the CLI hands to the engine.

Values come from ``[tool.adapter-guard]`` in the nearest ``pyproject.toml``
and are overridden by the command line, as in ruff.
"""

from __future__ import annotations

import os
from pathlib import Path

from .record import MutableRecord
from .registry import enabled_codes, unknown_selectors

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

    from .lfs import LfsHeaders

CONFIG_KEYS = {
    "select", "ignore", "exclude", "extend-exclude", "unsafe-fixes", "base-model", "fetch-base-config", "fail-on",
    "lfs-headers", "lfs-credentials", "targets",
}
FAIL_ON = ("error", "warning", "info", "never")


class SettingsError(ValueError):
    """A bad setting in pyproject.toml or on the command line (exit code 2)."""


class Settings(MutableRecord):
    __slots__ = ("paths", "fix", "unsafe_fixes", "diff", "select", "ignore", "exclude", "force_exclude", "output_format",
                 "exit_non_zero_on_fix", "fail_on", "base_model", "base_model_origin", "fetch_base_config", "smoke",
                 "require_smoke", "gpt_oss", "verbose", "lfs_headers", "lfs_credentials", "targets", "plans_fixes",
                 "root", "config_file", "_enabled", "_lfs")
    #: What the repr and comparison show: not the run's caches (the private slots).
    _fields = tuple(name for name in __slots__ if not name.startswith("_"))

    def __init__(
        self,
        paths: list[Path] | None = None,
        fix: bool = False,
        unsafe_fixes: bool = False,
        diff: bool = False,
        select: list[str] | None = None,
        ignore: list[str] | None = None,
        exclude: list[str] | None = None,
        force_exclude: bool = False,
        output_format: str = "text",
        exit_non_zero_on_fix: bool = False,
        fail_on: str = "warning",
        base_model: Path | None = None,
        base_model_origin: str = "--base-model",
        fetch_base_config: bool = False,
        smoke: bool = False,
        require_smoke: bool = False,
        gpt_oss: bool = False,
        verbose: bool = False,
        lfs_headers: bool | None = None,
        lfs_credentials: bool = False,
        targets: list | None = None,
        plans_fixes: bool = True,
        root: Path | None = None,
        config_file: Path | None = None,
        _enabled: tuple | None = None,
        _lfs: LfsHeaders | None = None,
    ) -> None:
        self.paths = [Path(".")] if paths is None else paths
        self.fix = fix
        self.unsafe_fixes = unsafe_fixes
        self.diff = diff
        self.select = select
        self.ignore = [] if ignore is None else ignore
        self.exclude = [] if exclude is None else exclude
        self.force_exclude = force_exclude
        self.output_format = output_format
        self.exit_non_zero_on_fix = exit_non_zero_on_fix
        self.fail_on = fail_on
        self.base_model = base_model
        #: Where base_model was set, for messages: "--base-model" or "base-model in <pyproject>".
        self.base_model_origin = base_model_origin
        #: Fetch a base's config.json from the Hugging Face Hub when no local copy is found.
        self.fetch_base_config = fetch_base_config
        self.smoke = smoke
        self.require_smoke = require_smoke
        self.gpt_oss = gpt_oss
        self.verbose = verbose
        #: Read the headers of Git LFS objects from the LFS server; None: on in GitHub Actions only.
        self.lfs_headers = lfs_headers
        #: Answer the LFS server's 401 with git's credential helper (opt-in).
        self.lfs_credentials = lfs_credentials
        #: Runtime targets (``--target`` / ``targets``), parsed (``adapter_guard.targets.Target``).
        self.targets = [] if targets is None else targets
        #: Whether fixes are planned (and diffs made) when nothing is written: for
        #: --diff, the markdown report and the GitHub outputs. The CLI turns it off
        #: for a plain lint, which then skips re-linting every fixed text.
        self.plans_fixes = plans_fixes
        #: The directory fixes may write in; links that leave it are never followed for writes.
        self.root = Path.cwd() if root is None else root
        #: Where the pyproject settings came from, for messages.
        self.config_file = config_file
        self._enabled = _enabled
        self._lfs = _lfs

    def lfs(self) -> LfsHeaders:
        """The run's Git LFS choice, made once: its fetcher caches headers by oid for the run.
        The engine asks for it only when it meets a pointer (``adapter_guard.lfs`` is
        imported then, not on every run)."""
        if self._lfs is None:
            from .lfs import choose

            self._lfs = choose(self.lfs_headers, credentials=self.lfs_credentials)
        return self._lfs

    @property
    def enabled(self) -> frozenset[str]:
        key = (tuple(self.select or ()), tuple(self.ignore))
        if self._enabled is None or self._enabled[0] != key:
            self._enabled = (key, enabled_codes(self.select, self.ignore))
        return self._enabled[1]

    @property
    def writes(self) -> bool:
        return self.fix and not self.diff


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has a [tool.adapter-guard] table."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace")
            if "[tool.adapter-guard" in text:
                return candidate
    return None


def load_pyproject(path: Path) -> dict[str, Any]:
    """Read ``[tool.adapter-guard]``; unknown keys and wrong types are a SettingsError."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc}") from None
    table = data.get("tool", {}).get("adapter-guard", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.adapter-guard] must be a table")
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise SettingsError(f"{path}: unknown key(s) in [tool.adapter-guard]: {', '.join(unknown)}")
    for key in ("select", "ignore", "exclude", "extend-exclude"):
        value = table.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise SettingsError(f"{path}: [tool.adapter-guard] {key} must be a list of strings")
    value = table.get("targets")
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise SettingsError(f"{path}: [tool.adapter-guard] targets must be a list of strings, like [\"vllm:max_lora_rank=64\"]")
    for key in ("unsafe-fixes", "fetch-base-config", "lfs-headers", "lfs-credentials"):
        if key in table and not isinstance(table[key], bool):
            raise SettingsError(f"{path}: [tool.adapter-guard] {key} must be true or false")
    if "base-model" in table and not isinstance(table["base-model"], str):
        raise SettingsError(f"{path}: [tool.adapter-guard] base-model must be a string")
    if table.get("fail-on", "warning") not in FAIL_ON:
        raise SettingsError(f"{path}: [tool.adapter-guard] fail-on must be one of {', '.join(FAIL_ON)}")
    return table


def _targets(specs: list[str], origin: str) -> list:
    """Parse target specs (importing the profiles only when there are some)."""
    from .targets import TargetError, parse_target

    targets = []
    for spec in specs:
        try:
            target = parse_target(spec)
        except TargetError as exc:
            raise SettingsError(f"{origin}: {exc}") from None
        if any(t.label == target.label for t in targets):
            continue
        targets.append(target)
    return targets


def resolve(cli: dict[str, Any], cwd: Path | None = None) -> Settings:
    """Merge pyproject settings with command-line values (CLI wins when given)."""
    cwd = cwd or Path.cwd()
    settings = Settings(root=cwd)
    pyproject = find_pyproject(cwd)
    if pyproject is not None:
        table = load_pyproject(pyproject)
        settings.config_file = pyproject
        base = pyproject.parent
        settings.select = table.get("select")
        settings.ignore = list(table.get("ignore", []))
        settings.exclude = list(table.get("exclude", [])) + list(table.get("extend-exclude", []))
        settings.unsafe_fixes = table.get("unsafe-fixes", False)
        settings.fail_on = table.get("fail-on", "warning")
        settings.fetch_base_config = table.get("fetch-base-config", False)
        settings.lfs_headers = table.get("lfs-headers")
        settings.lfs_credentials = table.get("lfs-credentials", False)
        if table.get("targets"):
            settings.targets = _targets(table["targets"], f"targets in {pyproject}")
        if "base-model" in table:
            settings.base_model = (base / os.path.expanduser(table["base-model"])).resolve()
            settings.base_model_origin = f"base-model in {pyproject}"
    for key, value in cli.items():
        if value is None:
            continue
        if key == "exclude":
            settings.exclude += list(value)
        elif key in ("select", "ignore"):
            if value:
                setattr(settings, key, list(value))
        elif key == "targets":
            if value:
                settings.targets = _targets(value, "--target")
        elif key == "base_model":
            settings.base_model, settings.base_model_origin = value, "--base-model"
        else:
            setattr(settings, key, value)
    if settings.base_model is not None and not (Path(settings.base_model).expanduser() / "config.json").is_file():
        # Given but not there is a mistake to stop at, not a base to quietly go without.
        raise SettingsError(f"{settings.base_model_origin}: `{settings.base_model}` has no config.json")
    bad = unknown_selectors([*(settings.select or []), *settings.ignore])
    if bad:
        raise SettingsError(f"unknown rule selector(s): {', '.join(bad)} (see `adapter-guard --list-rules`)")
    return settings
