"""Find the adapter_config.json files to check, and adapter weights that have none."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .readers import WEIGHTS_NAMES, listing

CONFIG_NAME = "adapter_config.json"

#: Directories never searched (they can still be named explicitly).
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", "site-packages", ".eggs"}
)


def is_excluded(path: Path, root: Path, patterns: Iterable[str]) -> bool:
    """Whether ``path`` matches an exclude glob, by its path relative to ``root`` or any one part."""
    patterns = list(patterns)
    if not patterns:
        return False
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = path.as_posix()
    parts = rel.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(rel, pattern) or any(fnmatch.fnmatchcase(p, pattern) for p in parts):
            return True
        # "dir/" style prefixes: exclude everything below a matching directory.
        if any(fnmatch.fnmatchcase("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            return True
    return False


def _walk(directory: Path, root: Path, exclude: list[str]) -> Iterator[tuple[Path, os.DirEntry, list[os.DirEntry]]]:
    """Configs (and lone weights) under ``directory``, never through a linked directory:
    each path, its directory entry, and its directory's entries as listed (unsorted)."""
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            scanned = list(os.scandir(current))
        except OSError:
            continue  # unreadable directories are skipped, as git would
        entries = sorted(scanned, key=lambda e: e.name)
        subdirs = []
        names = {entry.name for entry in entries}
        lone = None if CONFIG_NAME in names else next((n for n in WEIGHTS_NAMES if n in names), None)
        for entry in entries:
            if entry.name == CONFIG_NAME or entry.name == lone:
                path = Path(entry.path)
                if not is_excluded(path, root, exclude):
                    yield path, entry, scanned
            elif entry.is_dir(follow_symlinks=False):
                if entry.name in SKIP_DIRS or os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
                    continue
                if not is_excluded(Path(entry.path), root, exclude):
                    subdirs.append(Path(entry.path))
        stack.extend(reversed(subdirs))


#: The most entries of an adapter directory whose listing discovery hands on (an adapter
#: directory holds a handful; a larger one is listed again when it is read), and the most
#: entries handed on in all (about 100 bytes each: a few MB), whatever the tree's size.
MAX_HANDED_LISTING = 32
MAX_HANDED_ENTRIES = 65536


def discover(
    paths: Iterable[Path], *, root: Path, exclude: list[str], force_exclude: bool = False,
    unlinked: set[str] | None = None, listings: dict[str, dict[str, bool]] | None = None,
) -> list[Path]:
    """Config files under ``paths``, in a stable order, each once.

    A file named explicitly is checked even when excluded, unless
    ``force_exclude`` (the pre-commit hooks pass it, as ruff's do). A named
    weights file (``adapters.safetensors``, ``adapter_model.safetensors``, ...)
    stands for the config beside it, so a hook that sees only the weights
    change still checks their config; with no config beside it, it is
    checked itself (and reported as weights without a config).
    A directory search finds configs, and weights in directories that have none.

    What a search learns on the way spares the engine a second look, per path found
    (as ``str``): ``unlinked`` gets every path reached without a symbolic link from a
    directory that resolves inside ``root`` (such a path resolves inside ``root``
    too), and ``listings`` its directory's listing (``readers.listing``), for
    directories of at most ``MAX_HANDED_LISTING`` entries, ``MAX_HANDED_ENTRIES`` in all.
    """
    found: dict[str, Path] = {}
    handed = 0
    for path in paths:
        if path.is_dir() and path.name != CONFIG_NAME:  # a directory named like the config is reported, not searched
            inside = unlinked is not None and _resolves_inside(path, root)
            for config, entry, scanned in _walk(path, root, exclude):
                found.setdefault(os.path.normpath(config), config)
                if inside and not entry.is_symlink():
                    unlinked.add(str(config))
                if listings is not None and len(scanned) <= MAX_HANDED_LISTING and handed < MAX_HANDED_ENTRIES:
                    listings[str(config)] = listing(scanned)
                    handed += len(scanned)
            continue
        if path.name in WEIGHTS_NAMES:
            config = path.with_name(CONFIG_NAME)
            if config.exists() or config.is_symlink():
                path = config
            elif not path.is_file():
                continue
        if force_exclude and is_excluded(path, root, exclude):
            continue
        found.setdefault(os.path.normpath(path), path)
    return list(found.values())


def _resolves_inside(directory: Path, root: Path) -> bool:
    try:
        return directory.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False
