"""Finding the base model's ``config.json``: one lookup for the lint and the smoke test.

In order, the first that has a usable ``config.json`` wins:

1. ``--base-model DIR``;
2. ``base-model`` in ``[tool.adapter-guard]``;
3. a ``config.json`` beside the adapter (unsloth copies the base's there);
4. the adapter config's ``model`` / ``base_model_name_or_path``, only as a directory
   inside the repository root, or as a snapshot already in the local Hugging Face cache
   (at the revision the config names, if it names one);
5. with ``--fetch-base-config``, that repository's ``config.json`` from the Hub, and
   nothing else from it.

Only ``config.json`` is read, through the same bounded reader as adapter configs:
nothing a repository ships is imported or run. huggingface_hub is imported only to
fetch (step 5); the cache layout of step 4 is read as plain files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .formats.shared import base_layer_count
from .infer import layer_path
from .readers import read_base_config, read_config_bytes, read_weights_header
from .record import MutableRecord, Record
from .safetensors_header import HeaderError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

#: ``org/name``, as the Hugging Face Hub spells model repository ids.
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
#: A branch or tag name as it appears under ``refs/`` in the cache (``main``, ``v1.0``, ``pr/3``).
_REF_RE = re.compile(r"^[\w.-]+(?:/[\w.-]+)*$")
#: Seconds to wait for the Hub before giving up (the fetch is a convenience, never a blocker).
FETCH_TIMEOUT = 5.0
#: Keys of the adapter config that name the base model, in the order they are tried.
NAME_KEYS = ("model", "base_model_name_or_path")
#: The most weight shards whose headers are read for the module set (a 405B model has 191).
MAX_WEIGHT_SHARDS = 256


class Base(Record):
    """A base model's parsed ``config.json`` and where it came from."""

    __slots__ = ("config", "config_path", "origin")

    def __init__(self, config: dict[str, Any], config_path: Path, origin: str) -> None:
        self.config = config
        self.config_path = config_path
        #: How it was found, for messages: "--base-model", "beside the adapter", ...
        self.origin = origin

    @property
    def directory(self) -> Path:
        return self.config_path.parent

    @property
    def num_layers(self) -> int | None:
        return base_layer_count(self.config)

    def describe(self) -> str:
        return f"{self.config_path}, {self.origin}"


class BaseLookup(MutableRecord):
    __slots__ = ("base", "problems", "reason")

    def __init__(self, base: Base | None = None, problems: list[tuple[str, str, str | None]] | None = None,
                 reason: str = "") -> None:
        self.base = base
        #: Findings the lookup itself makes: (code, message, the adapter-config key it concerns).
        self.problems = [] if problems is None else problems
        #: Why no base was found (empty when one was), for the findings that needed one.
        self.reason = reason


def usable_base_config(config_path: Path) -> tuple[dict[str, Any] | None, str]:
    """A base ``config.json`` parsed, when it is a model config (a model_type or a layer count); else None and why."""
    config, why = read_base_config(config_path)
    if config is not None and base_layer_count(config) is None and not isinstance(config.get("model_type"), str):
        return None, "it has neither a model_type nor a layer count (num_hidden_layers): it is no model config"
    return config, why


def find_base(
    config: Mapping[str, Any],
    adapter_dir: Path,
    *,
    root: Path,
    base_model: Path | None = None,
    base_model_origin: str = "--base-model",
    fetch: bool = False,
    listing: Mapping[str, bool] | None = None,
) -> BaseLookup:
    """Find the base model's config.json for one adapter (see the module docstring).
    ``listing`` is ``adapter_dir``'s, as read (``readers.listing``): it answers what is
    beside the adapter without asking the file system again."""
    lookup = BaseLookup()
    if base_model is not None:
        # An explicit base is the user's choice: when it is unusable, say so and guess nothing else.
        path = Path(base_model).expanduser() / "config.json"
        parsed, why = usable_base_config(path)
        if parsed is None:
            lookup.problems.append(("AG310", f"the base config `{path}` ({base_model_origin}) is unusable: {why}", None))
            lookup.reason = f"the base config `{path}` ({base_model_origin}) is unusable: {why}"
            return lookup
        lookup.base = Base(parsed, path, base_model_origin)
        return lookup

    reasons = []
    if listing.get("config.json", False) if listing is not None else (adapter_dir / "config.json").is_file():
        beside = adapter_dir / "config.json"
        parsed, why = usable_base_config(beside)
        if parsed is not None:
            lookup.base = Base(parsed, beside, "beside the adapter")
            return lookup
        reasons.append(f"`{beside}` is unusable: {why}")

    names = _named_bases(config)
    revision, commit = _revision(config)
    repo_ids = []
    for key, name in names:
        directory, why = _directory_inside(name, adapter_dir, root, listing)
        if directory is not None:
            parsed, why = usable_base_config(directory / "config.json")
            if parsed is not None:
                lookup.base = Base(parsed, directory / "config.json", f"named by the adapter config's `{key}`")
                return lookup
            reasons.append(f"`{directory / 'config.json'}` is unusable: {why}")
            continue
        if why:
            reasons.append(why)
        if _REPO_ID_RE.match(name) and ".." not in name:
            repo_ids.append((key, name))
            snapshot, why = cached_snapshot(name, revision, commit)
            if snapshot is not None:
                parsed, why = usable_base_config(snapshot / "config.json")
                if parsed is not None:
                    lookup.base = Base(parsed, snapshot / "config.json", f"`{name}` in the local Hugging Face cache")
                    return lookup
            reasons.append(why)

    if fetch:
        for key, name in repo_ids:
            path, why = fetch_config(name, commit or revision)
            if path is not None:
                parsed, unusable = usable_base_config(path)
                if parsed is not None:
                    lookup.base = Base(parsed, path, f"`{name}` fetched from {_endpoint() or 'the Hugging Face Hub'}")
                    return lookup
                why = f"the fetched `{path}` is unusable: {unusable}"
            lookup.problems.append(("AG311", f"--fetch-base-config could not get `{name}`'s config.json: {why}", key))
            reasons.append(f"fetching `{name}`'s config.json failed")
    elif repo_ids:
        reasons.append("--fetch-base-config would fetch its config.json from the Hub")
    if not names and not reasons:
        reasons.append("no --base-model, no config.json beside the adapter, and the config names no base model")
    lookup.reason = "; ".join(dict.fromkeys(r for r in reasons if r))
    return lookup


def _named_bases(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    seen, out = set(), []
    for key in NAME_KEYS:
        name = config.get(key)
        if isinstance(name, str) and name.strip() and name not in seen:
            seen.add(name)
            out.append((key, name))
    return out


def _revision(config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The base revision the adapter config names (unsloth: base_model_revision and
    base_model_commit_hash; PEFT: revision), each None unless well formed."""
    commit = config.get("base_model_commit_hash")
    commit = commit if isinstance(commit, str) and _COMMIT_RE.match(commit) else None
    revision = next((config[k] for k in ("base_model_revision", "revision") if isinstance(config.get(k), str)), None)
    if revision is not None and (not _REF_RE.match(revision) or ".." in revision):
        revision = None
    return revision, commit


def _directory_inside(
    name: str, adapter_dir: Path, root: Path, listing: Mapping[str, bool] | None = None
) -> tuple[Path | None, str]:
    """The directory ``name`` points at, if it is one inside ``root`` (relative names:
    from the root, then from the adapter, whose ``listing`` may be given), else None and
    why it was not used."""
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # "~user" with no such user
        return None, ""
    bases = [None] if path.is_absolute() else [root, adapter_dir]
    resolved_root = None
    outside = None
    for base in bases:
        try:  # a name from the config may hold NUL or a lone surrogate: no such directory
            if _surely_absent(base, path, listing if base is adapter_dir else None):
                continue
            candidate = path if base is None else base / path
            resolved = candidate.resolve()
            if not resolved.is_dir():
                continue
            if resolved_root is None:
                resolved_root = _resolved(root)
            if not resolved.is_relative_to(resolved_root):
                outside = candidate
                continue
            if os.path.lexists(resolved / "config.json"):  # read (or refused, with the reason) by the bounded reader
                return resolved, ""
        except (OSError, RuntimeError, ValueError):
            continue
    if outside is not None:
        return None, f"`{name}` is a directory outside the repository (`{resolved_root}`), which is never read"
    return None, ""


def _surely_absent(base: Path | None, name: Path, listing: Mapping[str, bool] | None = None) -> bool:
    """Whether ``name`` (absolute when ``base`` is None, else under that existing
    directory, whose ``listing`` may be given) surely resolves to no directory, because
    its first part is missing.

    Most names an adapter config gives are Hub ids (``org/model``), no directory at all:
    one ``lstat`` answers instead of resolving every part of the path, with
    ``resolve``'s answer: without a ``..`` part, nothing can take the missing part off
    the resolved path again (``resolve`` keeps a missing part as it is), so the result
    names no directory either.
    """
    parts = name.parts
    if base is None:
        if len(parts) < 2 or ".." in parts:
            return False
        first = os.path.join(parts[0], parts[1])
    else:
        if not parts or ".." in parts or ".." in base.parts:
            return False
        if listing is not None:  # the directory's entries, as listed: the names lstat would find
            return parts[0] not in listing
        first = os.path.join(base, parts[0])
    try:
        os.lstat(first)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _resolved(root: Path) -> Path:
    """``root`` resolved: once per run while ``run_cache`` is active."""
    return _run_cached(("root", root), root.resolve)


# -- lookups that hold for one run --------------------------------------------------

#: Within one engine run (``run_cache``): the resolved root, and what ``cached_snapshot``
#: found for each repository and revision. None outside a run, so a library call always
#: looks again. A repository of many adapters names the same few bases over and over.
_RUN: dict[tuple, Any] | None = None
#: The most lookups kept per run. Each key is at most a repository id (96 + 96
#: characters, ``_REPO_ID_RE``) and a revision of at most ``MAX_CACHED_REVISION``
#: characters, each value a path and a one-line reason: well under 1 MB in all.
MAX_RUN_ENTRIES = 1024
MAX_CACHED_REVISION = 256


@contextmanager
def run_cache() -> Iterator[None]:
    """Keep the lookups above for the duration of one run (``engine.run``)."""
    global _RUN
    saved, _RUN = _RUN, {}
    try:
        yield
    finally:
        _RUN = saved


def _run_cached(key: tuple, compute: Callable[[], Any]) -> Any:
    if _RUN is None:
        return compute()
    if key in _RUN:
        return _RUN[key]
    value = compute()
    if len(_RUN) < MAX_RUN_ENTRIES:
        _RUN[key] = value
    return value


# -- the local Hugging Face cache ---------------------------------------------------


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (as huggingface_hub
    does at import): HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME."""
    env = os.environ
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not cache:
        home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
        cache = os.path.join(os.path.expandvars(os.path.expanduser(home)), "hub")
    return Path(os.path.expandvars(os.path.expanduser(cache)))


def cached_snapshot(repo_id: str, revision: str | None = None, commit: str | None = None) -> tuple[Path | None, str]:
    """``_cached_snapshot``, looked up once per run for each repository and revision."""
    if revision is not None and len(revision) > MAX_CACHED_REVISION:
        return _cached_snapshot(repo_id, revision, commit)
    return _run_cached(("snapshot", repo_id, revision, commit), lambda: _cached_snapshot(repo_id, revision, commit))


def _cached_snapshot(repo_id: str, revision: str | None = None, commit: str | None = None) -> tuple[Path | None, str]:
    """The cached snapshot of ``repo_id`` that holds config.json, or None and why.

    The layout huggingface_hub documents: ``models--org--name/refs/<revision>`` holds a
    commit hash, ``snapshots/<commit>/config.json`` the file. A named revision or commit
    is taken as named (never another one); without one, ``refs/main``, or the only
    snapshot when there is exactly one.
    """
    repo = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    wanted = commit
    if wanted is None and revision is not None:
        wanted = revision if _COMMIT_RE.match(revision) else _read_ref(repo / "refs" / revision)
        if wanted is None:
            return None, f"`{repo_id}` at revision {revision!r} is not in the local Hugging Face cache"
    if wanted is None:
        wanted = _read_ref(repo / "refs" / "main")
    if wanted is not None:
        if (snapshots / wanted / "config.json").is_file():
            return snapshots / wanted, ""
        at = f" at {revision or 'main'} ({wanted[:12]})" if (revision or commit is None) else f" at {wanted[:12]}"
        return None, f"`{repo_id}`{at} has no config.json in the local Hugging Face cache"
    try:
        found = [p for p in snapshots.iterdir() if (p / "config.json").is_file()]
    except OSError:
        found = []
    if len(found) == 1:
        return found[0], ""
    if found:
        return None, f"`{repo_id}` has {len(found)} cached snapshots and no refs/main to choose one"
    return None, f"`{repo_id}` is not in the local Hugging Face cache (`{hub_cache_dir()}`)"


def _read_ref(path: Path) -> str | None:
    try:
        commit = read_config_bytes(path, limit=256).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if _COMMIT_RE.match(commit) else None


# -- fetching one config.json from the Hub (opt-in) ----------------------------------

#: One fetch per repository and revision per run: (endpoint, cache, repo, revision) -> result.
_FETCHED: dict[tuple[str | None, str, str, str | None], tuple[Path | None, str]] = {}


def _endpoint() -> str | None:
    endpoint = os.environ.get("HF_ENDPOINT")
    return endpoint.rstrip("/") if endpoint else None


def _offline() -> bool:
    # huggingface_hub's own test of the variables (constants._is_true), read now, not at its import.
    return any(
        (os.environ.get(var) or "").upper() in ("1", "ON", "YES", "TRUE") for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def fetch_config(repo_id: str, revision: str | None = None) -> tuple[Path | None, str]:
    """Download only ``repo_id``'s config.json into the Hugging Face cache.

    Honours HF_HUB_OFFLINE (no request at all), HF_ENDPOINT, HF_TOKEN and the cache
    variables, all read now. A short timeout and no retries: a failure is returned as a
    reason, never raised.
    """
    if _offline():
        return None, "HF_HUB_OFFLINE is set, so nothing was requested"
    key = (_endpoint(), str(hub_cache_dir()), repo_id, revision)
    if key not in _FETCHED:
        _FETCHED[key] = _fetch(repo_id, revision)
        if _RUN is not None:  # the download changed the local cache: look again from now on
            for stale in [k for k in _RUN if k[0] == "snapshot"]:
                del _RUN[stale]
    return _FETCHED[key]


def _fetch(repo_id: str, revision: str | None) -> tuple[Path | None, str]:
    try:
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    except ImportError:
        return None, "huggingface_hub is not installed (pip install 'adapter-guard[hub]')"
    endpoint = _endpoint()
    # huggingface_hub reads its variables once, at import; these are this call's. Only
    # config.json is asked for: its telemetry would also fetch an agent registry from the
    # endpoint, so it is off for this one call. HF_HUB_OFFLINE was checked just now.
    saved = constants.HF_HUB_DISABLE_TELEMETRY, constants.HF_HUB_OFFLINE
    constants.HF_HUB_DISABLE_TELEMETRY, constants.HF_HUB_OFFLINE = True, False
    try:
        # One quick HEAD first: hf_hub_download retries a refused or failing server
        # for up to a minute before it gives up, which a lint must not wait for.
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json", revision=revision, endpoint=endpoint),
                             timeout=FETCH_TIMEOUT, endpoint=endpoint)
        path = hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=hub_cache_dir(),
                               endpoint=endpoint, etag_timeout=FETCH_TIMEOUT)
    except Exception as exc:  # any failure (network, HTTP, gated, disk) is a reason, not a crash
        detail = str(exc).strip().splitlines()
        return None, f"{type(exc).__name__}: {detail[0] if detail else 'no detail'}"
    finally:
        constants.HF_HUB_DISABLE_TELEMETRY, constants.HF_HUB_OFFLINE = saved
    return Path(path), ""


# -- the modules mlx-lm's default LoRA set wraps, from the base weights' headers --------


def layer_modules(directory: Path) -> dict[str, frozenset[str]] | None:
    """Per layer prefix (``model.layers``), the layer-relative names of every module
    whose weight is a matrix or an expert stack: the Linear, SwitchLinear and Embedding
    modules mlx-lm wraps when ``lora_parameters.keys`` is absent. Read from the headers
    of ``model*.safetensors`` only; None when there are no readable weights."""
    try:
        files = sorted(directory.glob("model*.safetensors"))[: MAX_WEIGHT_SHARDS + 1]
    except OSError:
        return None
    if not files or len(files) > MAX_WEIGHT_SHARDS:
        return None
    return _layer_modules(tuple((str(f), f.stat().st_mtime_ns) for f in files))


_MODULES_CACHE: dict[tuple, dict[str, frozenset[str]] | None] = {}


def _layer_modules(files: tuple[tuple[str, int], ...]) -> dict[str, frozenset[str]] | None:
    if files in _MODULES_CACHE:
        return _MODULES_CACHE[files]
    found: dict[str, set[str]] = {}
    try:
        for name, _ in files:
            for tensor, shape in read_weights_header(Path(name)).shapes().items():
                module, _, leaf = tensor.rpartition(".")
                located = layer_path(module)
                # Norms are vectors; convolutions are not wrapped by mlx-lm's default set.
                if leaf != "weight" or located is None or len(shape) not in (2, 3) or "conv" in module.rpartition(".")[2]:
                    continue
                found.setdefault(located.prefix, set()).add(located.relative)
    except HeaderError:
        found = {}
    result = {prefix: frozenset(names) for prefix, names in found.items()} or None
    _MODULES_CACHE[files] = result
    return result
