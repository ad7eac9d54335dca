"""Git LFS: recognise pointer files, and read a safetensors header from the LFS server.

A checkout without LFS objects (``actions/checkout`` by default, or a clone
with ``GIT_LFS_SKIP_SMUDGE=1``) holds, in place of each weights file, a pointer
of at most 1024 bytes (git-lfs ``docs/spec.md``)::

    version https://git-lfs.github.com/spec/v1
    oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
    size 12345

The lint needs only the safetensors header of the object, so
:class:`HeaderFetcher` asks the repository's LFS server for it
(``docs/api/batch.md``: a ``download`` operation with the pointer's oid and
size), then reads the returned ``href`` with its ``header`` values
(``docs/api/basic-transfers.md``) in two ``Range`` requests: the first 8 bytes,
then the ``N`` header bytes. The length check, the cap and the parse are the
local reader's (:mod:`.safetensors_header`), with the pointer's ``size`` as the
file size. A server that ignores ``Range`` is read for ``8 + N`` bytes and the
connection closed. The object's sha256 is not checked: that needs every byte.

What is sent where:

- the batch request goes to the LFS URL from ``lfs.url`` (git config, then
  ``.lfsconfig``), ``remote.<name>.lfsurl``, or the remote's URL plus
  ``.git/info/lfs``, as git-lfs finds it (``docs/api/server-discovery.md``);
- it carries the job's ``GITHUB_TOKEN`` only when run in GitHub Actions and only
  to the GitHub server's own host; elsewhere, credentials from git's credential
  helper only when the user opts in, and only after the server answers 401;
- the download goes to the ``href`` with exactly the ``header`` values the batch
  response gave for it, never our own credentials.

Git is only asked to read configuration (``git config``, ``git credential
fill``); no hook, filter or program from the checked repository runs.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .safetensors_header import LENGTH_BYTES, Header, HeaderError, check_file_size, header_length, parse_header

#: The most a pointer file can be (git-lfs reads no more than this to decide).
POINTER_MAX_BYTES = 1024
#: The version lines git-lfs reads: the current one, and the pre-release one.
POINTER_VERSIONS = (b"https://git-lfs.github.com/spec/v1", b"https://hawser.github.com/spec/v1")
#: Seconds for any one connect or read, and for a whole object's header.
TIMEOUT_SECONDS = 10.0
DEADLINE_SECONDS = 30.0
#: The most read of a batch response or an error body.
MAX_RESPONSE_BYTES = 1024 * 1024
LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
DEFAULT_GITHUB_SERVER = "https://github.com"

# Byte sets, not regular expressions: compiling those would cost every run that
# imports this module, and most never meet a pointer.
_KEY_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789.-"
_HEX_BYTES = b"0123456789abcdef"
_CONTENT_RANGE = r"bytes (\d+)-(\d+)/(\d+|\*)"
_SCP_REMOTE = r"(?:[^@/]+@)?([^:/]+):(.+)"


@dataclass(frozen=True)
class Pointer:
    """A Git LFS pointer: the object's sha256 (64 hex digits) and size in bytes."""

    oid: str
    size: int


def parse_pointer(data: bytes) -> Pointer | None:
    """The pointer ``data`` holds, or None when it is not a valid v1 pointer.

    Per the spec: at most 1024 bytes of ``key value`` lines, ``version`` first,
    the other keys in ascending order (extension keys such as ``ext-0-foo``
    come before ``oid``), and ``oid sha256:<64 hex>`` and ``size`` present.
    """
    if len(data) > POINTER_MAX_BYTES or not data.startswith(b"version "):
        return None
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the trailing newline
    values: dict[bytes, bytes] = {}
    previous = b""
    for number, line in enumerate(lines):
        key, space, value = line.partition(b" ")
        if not space or not key or key.translate(None, _KEY_BYTES) or b"\r" in value or key in values:
            return None
        if number > 0 and (key == b"version" or key <= previous):
            return None
        values[key] = value
        previous = key if number > 0 else b""
    if values[b"version"] not in POINTER_VERSIONS or b"oid" not in values or b"size" not in values:
        return None
    method, _, oid = values[b"oid"].partition(b":")
    size = values[b"size"]
    if method != b"sha256" or len(oid) != 64 or oid.translate(None, _HEX_BYTES):
        return None
    if not (size.isdigit() and len(size) <= 20):
        return None
    return Pointer(oid.decode("ascii"), int(size))


def read_pointer(path: str | os.PathLike[str]) -> Pointer | None:
    """The pointer in the regular file at ``path``, or None (not a pointer, or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000 and st.st_size <= POINTER_MAX_BYTES):
            return None
        return parse_pointer(os.read(fd, POINTER_MAX_BYTES + 1))
    except OSError:
        return None
    finally:
        os.close(fd)


class FetchError(Exception):
    """The header could not be fetched; ``message`` says why, in one line.

    ``server_wide``: the batch endpoint itself failed (unreachable, timed out,
    refused), so no other object is asked for in this run either.
    """

    def __init__(self, message: str, *, server_wide: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.server_wide = server_wide


# -- where the LFS server is ----------------------------------------------------


def repository_root(path: Path) -> Path | None:
    """The work tree that holds ``path``: the nearest directory above it with a ``.git``."""
    for directory in Path(os.path.abspath(path)).parents:
        if os.path.lexists(directory / ".git"):
            return directory
    return None


def _git_config(root: Path, key: str, *, file: Path | None = None) -> str | None:
    """One value from git's configuration of ``root`` (or from ``file`` alone), or None.

    Only ``git config`` runs: it reads files and runs nothing from the repository.
    """
    import subprocess

    where = ["--file", str(file)] if file is not None else []
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "config", *where, "--get", key],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.decode("utf-8", "replace").strip()
    return value if done.returncode == 0 and value else None


def _remote_name(root: Path) -> str | None:
    import subprocess

    try:
        done = subprocess.run(
            ["git", "-C", str(root), "remote"],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = done.stdout.decode("utf-8", "replace").split()
    if "origin" in names:
        return "origin"
    return names[0] if len(names) == 1 else None


def lfs_url_from_remote(remote: str) -> str | None:
    """The LFS server git-lfs guesses for a git remote URL (``docs/api/server-discovery.md``):
    the remote with ``.git/info/lfs`` appended, over HTTPS for SSH remotes. None for
    a local path or a ``file://`` remote, which have no LFS server."""
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https"):
        host, path = parts.netloc, parts.path
        scheme = parts.scheme
    elif parts.scheme in ("ssh", "git+ssh", "ssh+git"):
        scheme, host, path = "https", parts.hostname or "", parts.path
    elif not parts.scheme and (match := re.fullmatch(_SCP_REMOTE, remote)) and "/" not in match[1]:
        scheme, host, path = "https", match[1], "/" + match[2].lstrip("/")
    else:
        return None
    if not host:
        return None
    path = path.rstrip("/")
    if not path.endswith(".git"):
        path += ".git"
    return urlunsplit((scheme, host, path + "/info/lfs", "", ""))


@dataclass(frozen=True)
class Endpoint:
    url: str  # the LFS server URL, without credentials
    source: str  # where it came from, for messages
    userinfo: str | None = field(default=None, repr=False)  # "user:password" embedded in the URL


def find_endpoint(root: Path) -> Endpoint:
    """The LFS server for the work tree at ``root``, found as git-lfs finds it."""
    lfsconfig = root / ".lfsconfig"
    has_lfsconfig = lfsconfig.is_file()

    def lookup(key: str) -> tuple[str, str] | None:
        value = _git_config(root, key)
        if value:
            return value, f"{key} in git config"
        if has_lfsconfig:
            value = _git_config(root, key, file=lfsconfig)
            if value:
                return value, f"{key} in .lfsconfig"
        return None

    found = lookup("lfs.url")
    remote = _remote_name(root)
    if found is None and remote:
        found = lookup(f"remote.{remote}.lfsurl")
    if found is None and remote:
        remote_url = _git_config(root, f"remote.{remote}.url")
        guessed = lfs_url_from_remote(remote_url) if remote_url else None
        if guessed:
            found = guessed, f"the URL of remote {remote!r}"
    if found is None:
        raise FetchError(
            "no LFS server: set lfs.url (git config or .lfsconfig) or add an HTTPS remote"
            if remote is None else f"no LFS server for remote {remote!r}: set lfs.url (git config or .lfsconfig)"
        )
    url, source = found
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"the LFS URL from {source} is not an http(s) URL")
    userinfo = None
    if "@" in parts.netloc:
        userinfo, _, netloc = parts.netloc.rpartition("@")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return Endpoint(url.rstrip("/"), source, userinfo)


# -- HTTP -----------------------------------------------------------------------


# urllib (and the ssl it imports) loads only when a pointer is fetched: the lint
# path of a repository without LFS pointers never pays for it.


def _opener():
    import urllib.request

    class RedirectHandler(urllib.request.HTTPRedirectHandler):
        """Follow a few GET redirects; never POST ones, and never carry an
        Authorization header to another host."""

        max_redirections = 3

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if req.get_method() != "GET":
                return None
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
                new.remove_header("Authorization")
            return new

    # Built by hand: build_opener() would add file://, ftp:// and data: handlers.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        RedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _display(url: str) -> str:
    """A URL as messages show it: scheme, host and path, never a query (signed URLs carry secrets there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _basic(userinfo: str) -> str:
    return "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")


@dataclass
class _Download:
    href: str
    headers: dict[str, str]


class HeaderFetcher:
    """Fetches safetensors headers of LFS objects, caching each oid's outcome for the run.

    ``env`` is the environment (``GITHUB_ACTIONS``, ``GITHUB_TOKEN``,
    ``GITHUB_SERVER_URL``); ``credentials`` lets a 401 be answered with git's
    credential helper.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, credentials: bool = False,
                 timeout: float | None = None, deadline: float | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.credentials = credentials
        self.timeout = TIMEOUT_SECONDS if timeout is None else timeout
        self.deadline = DEADLINE_SECONDS if deadline is None else deadline
        #: Bytes of object data read from download hrefs (the header bytes), for the run.
        self.bytes_received = 0
        self.requests = 0
        self._endpoints: dict[Path, Endpoint | FetchError] = {}
        self._headers: dict[tuple[str, str], Header | HeaderError | FetchError] = {}
        self._failed_servers: dict[str, FetchError] = {}
        self._opener = None  # built on the first request
        self._credential_cache: dict[str, str | None] = {}

    def __getstate__(self) -> dict:
        # Sent to worker processes: each builds its own opener.
        return dict(self.__dict__, _opener=None)

    # -- public --------------------------------------------------------------

    def header(self, weights: Path, pointer: Pointer) -> Header:
        """The header of the object ``pointer`` names, for the weights file at ``weights``.

        Raises :class:`HeaderError` when the object's header is bad (the same
        messages as for a local file) and :class:`FetchError` when it could not be read.
        """
        check_file_size(pointer.size)  # too short to be safetensors: no need to ask
        root = repository_root(weights)
        if root is None:
            raise FetchError("it is not inside a git repository, so there is no LFS server to ask")
        endpoint = self._endpoint(root)
        if endpoint.url in self._failed_servers:
            raise self._failed_servers[endpoint.url]
        key = (endpoint.url, pointer.oid)
        if key not in self._headers:
            try:
                self._headers[key] = self._fetch(endpoint, pointer)
            except FetchError as exc:
                if exc.server_wide:  # a server that is down is not asked again, and no timeout is waited twice
                    self._failed_servers[endpoint.url] = exc
                self._headers[key] = exc
            except HeaderError as exc:
                self._headers[key] = exc
        outcome = self._headers[key]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    # -- steps ---------------------------------------------------------------

    def _endpoint(self, root: Path) -> Endpoint:
        if root not in self._endpoints:
            try:
                self._endpoints[root] = find_endpoint(root)
            except FetchError as exc:
                self._endpoints[root] = exc
        found = self._endpoints[root]
        if isinstance(found, FetchError):
            raise found
        return found

    def _fetch(self, endpoint: Endpoint, pointer: Pointer) -> Header:
        deadline = time.monotonic() + self.deadline  # for the whole object: batch answer and header reads
        download = self._batch(endpoint, pointer, deadline)
        body = self._get_range(download, pointer, 0, LENGTH_BYTES, deadline)
        try:
            size = header_length(body.read(LENGTH_BYTES), pointer.size)
            if body.whole:  # the server ignored Range: read on, then close before the tensor data
                return parse_header(body.read(size), pointer.size)
        finally:
            body.close()
        body = self._get_range(download, pointer, LENGTH_BYTES, size, deadline)
        try:
            if body.whole:
                body.read(LENGTH_BYTES)
            return parse_header(body.read(size), pointer.size)
        finally:
            body.close()

    def _batch(self, endpoint: Endpoint, pointer: Pointer, deadline: float) -> _Download:
        import json

        url = endpoint.url + "/objects/batch"
        body = json.dumps({
            "operation": "download",
            "transfers": ["basic"],
            "objects": [{"oid": pointer.oid, "size": pointer.size}],
        }).encode("utf-8")
        headers = {"Accept": LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE}
        auth = self._initial_auth(endpoint)
        status, payload = self._post_json(url, body, headers, auth, deadline)
        if status == 401 and auth is None:
            auth = self._helper_auth(url)
            if auth is not None:
                status, payload = self._post_json(url, body, headers, auth, deadline)
        if status != 200:
            raise FetchError(self._batch_status_message(status, url, auth is not None), server_wide=True)
        return self._download_action(payload, pointer, url)

    def _initial_auth(self, endpoint: Endpoint) -> str | None:
        if endpoint.userinfo:
            return _basic(endpoint.userinfo)
        token = self.env.get("GITHUB_TOKEN", "")
        if self.env.get("GITHUB_ACTIONS") == "true" and token:
            server = urlsplit(self.env.get("GITHUB_SERVER_URL") or DEFAULT_GITHUB_SERVER)
            target = urlsplit(endpoint.url)
            # The job's token goes to the GitHub server that issued it (GITHUB_SERVER_URL) and nowhere else.
            if (target.scheme, target.hostname, target.port) == (server.scheme, server.hostname, server.port):
                return _basic(f"x-access-token:{token}")
        return None

    def _helper_auth(self, url: str) -> str | None:
        """Ask git's credential helper, only when the user opted in; never prompts."""
        import subprocess

        if not self.credentials:
            return None
        parts = urlsplit(url)
        if parts.netloc in self._credential_cache:
            return self._credential_cache[parts.netloc]
        request = f"protocol={parts.scheme}\nhost={parts.netloc}\npath={parts.path.lstrip('/')}\n\n"
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
        auth = None
        try:
            # cwd "/": the helpers of the user's own git config, not of the checked repository.
            done = subprocess.run(
                ["git", "credential", "fill"], input=request.encode("utf-8"), capture_output=True,
                timeout=self.timeout, env=env, cwd="/", check=False,
            )
            if done.returncode == 0:
                fields = dict(
                    line.split("=", 1) for line in done.stdout.decode("utf-8", "replace").splitlines() if "=" in line
                )
                if fields.get("username") and fields.get("password"):
                    auth = _basic(f"{fields['username']}:{fields['password']}")
        except (OSError, subprocess.SubprocessError):
            auth = None
        self._credential_cache[parts.netloc] = auth
        return auth

    def _batch_status_message(self, status: int, url: str, authenticated: bool) -> str:
        where = f"the LFS server ({_display(url)})"
        if status == 401:
            if authenticated:
                return f"{where} refused the credentials (HTTP 401)"
            hint = "the job's token is sent only to the GitHub server" if self.env.get("GITHUB_ACTIONS") == "true" \
                else "pass --lfs-credentials to use git's credential helper"
            return f"{where} needs credentials (HTTP 401); {hint}"
        if status == 403:
            return f"{where} refused access (HTTP 403); the credentials cannot read this repository's LFS objects"
        if status == 404:
            return f"{where} answered HTTP 404: no such repository, or no access to it"
        return f"{where} answered HTTP {status}"

    def _post_json(
        self, url: str, body: bytes, headers: dict[str, str], auth: str | None, deadline: float
    ) -> tuple[int, object]:
        import json
        import urllib.request

        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        request.add_header("User-Agent", f"adapter-guard/{__version__}")
        if auth:
            request.add_header("Authorization", auth)
        try:
            response = self._open(request, url)
            try:
                status = response.status
                data = self._read_at_most(response, MAX_RESPONSE_BYTES, deadline, url)
            finally:
                response.close()
        except FetchError as exc:
            raise FetchError(exc.message, server_wide=True) from None
        if status != 200:
            return status, None
        try:
            return status, json.loads(data)
        except (ValueError, RecursionError):
            raise FetchError(f"the LFS server ({_display(url)}) sent a batch response that is not JSON") from None

    def _download_action(self, payload: object, pointer: Pointer, url: str) -> _Download:
        where = f"the LFS server ({_display(url)})"
        objects = payload.get("objects") if isinstance(payload, dict) else None
        transfer = payload.get("transfer", "basic") if isinstance(payload, dict) else None
        if transfer not in ("basic", None):
            raise FetchError(f"{where} offers the {str(transfer)[:40]!r} transfer, not basic")
        entry = next(
            (o for o in objects if isinstance(o, dict) and o.get("oid") == pointer.oid),
            None,
        ) if isinstance(objects, list) else None
        if entry is None:
            raise FetchError(f"{where} sent a batch response without the object")
        error = entry.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message", ""))[:120].replace("\n", " ")
            if code == 404:
                return_message = f"{where} does not have the object (404: {message or 'not found'}); was it pushed?"
            else:
                return_message = f"{where} cannot serve the object ({code}: {message})"
            raise FetchError(return_message)
        action = (entry.get("actions") or {}).get("download") if isinstance(entry.get("actions"), dict) else None
        if not isinstance(action, dict) or not isinstance(action.get("href"), str):
            raise FetchError(f"{where} sent no download action for the object")
        href = action["href"]
        if urlsplit(href).scheme not in ("http", "https") or not urlsplit(href).hostname:
            raise FetchError(f"{where} sent a download href that is not an http(s) URL")
        header = action.get("header") or {}
        if not (isinstance(header, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in header.items())):
            raise FetchError(f"{where} sent download headers that are not strings")
        return _Download(href, dict(header))

    def _get_range(self, download: _Download, pointer: Pointer, start: int, count: int, deadline: float) -> _Body:
        """GET ``count`` bytes of the object from ``start``, with the action's headers.

        A 206 must carry exactly the Content-Range asked for; a 200 (Range
        ignored) is the whole object from byte 0, and ``whole`` says so.
        """
        import urllib.request

        end = start + count - 1
        request = urllib.request.Request(download.href, method="GET")
        for key, value in download.headers.items():
            request.add_header(key, value)
        request.add_header("User-Agent", f"adapter-guard/{__version__}")
        request.add_header("Range", f"bytes={start}-{end}")
        response = self._open(request, download.href)
        where = f"the LFS download ({_display(download.href)})"
        try:
            status = response.status
            if status == 206:
                content_range = response.headers.get("Content-Range", "")
                match = re.fullmatch(_CONTENT_RANGE, content_range.strip())
                if match is None or (int(match[1]), int(match[2])) != (start, end) \
                        or match[3] not in ("*", str(pointer.size)):
                    raise FetchError(
                        f"{where} answered Range bytes={start}-{end} with Content-Range "
                        f"{content_range[:60]!r}, not bytes {start}-{end}/{pointer.size}"
                    )
                return _Body(self, response, where, deadline, whole=False)
            if status == 200:
                length = response.headers.get("Content-Length")
                if length is not None and length.strip() != str(pointer.size):
                    raise FetchError(
                        f"{where} sent {length.strip()[:20]} bytes, but the pointer says the object has {pointer.size}"
                    )
                return _Body(self, response, where, deadline, whole=True)
            raise FetchError(self._download_status_message(status, where))
        except BaseException:
            response.close()
            raise

    @staticmethod
    def _download_status_message(status: int, where: str) -> str:
        if status == 403:
            return f"{where} refused access (HTTP 403); the link may have expired"
        if status == 404:
            return f"{where} answered HTTP 404: the object is missing on the server"
        if status == 416:
            return f"{where} refused the byte range (HTTP 416)"
        return f"{where} answered HTTP {status}"

    # -- I/O -----------------------------------------------------------------

    def _open(self, request, url: str):
        import urllib.error
        from http.client import HTTPException

        self.requests += 1
        if self._opener is None:
            self._opener = _opener()
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            return exc  # a response too: the caller turns its status into a message
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as exc:
            raise FetchError(f"no answer from {_display(url)}: {_reason(exc)}") from None

    def _read_at_most(self, response, limit: int, deadline: float, url: str) -> bytes:
        from http.client import HTTPException

        chunks, size = [], 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise FetchError(f"the LFS server ({_display(url)}) took more than {self.deadline:g} s")
                chunk = response.read(1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"the LFS server ({_display(url)}) sent more than {limit} bytes")
        except (OSError, HTTPException) as exc:
            raise FetchError(f"the LFS server ({_display(url)}) failed while answering: {_reason(exc)}") from None


class _Body:
    """The body of one download response, read to exact counts within a deadline.

    Only what is asked for is read; closing drops the connection, so a server
    that sends the whole object (Range ignored) sends no more than fits in the
    socket buffers.
    """

    def __init__(self, fetcher: HeaderFetcher, response, where: str, deadline: float, *, whole: bool) -> None:
        self.fetcher, self.response, self.where, self.deadline, self.whole = fetcher, response, where, deadline, whole

    def read(self, count: int) -> bytes:
        from http.client import HTTPException, IncompleteRead

        chunks, size = [], 0
        try:
            while size < count:
                if time.monotonic() > self.deadline:
                    raise FetchError(f"{self.where} took more than {self.fetcher.deadline:g} s")
                try:
                    chunk = self.response.read(min(count - size, 1 << 16))
                except IncompleteRead:  # the server closed before its Content-Length
                    chunk = b""
                if not chunk:
                    raise FetchError(f"{self.where} ended after {size} of {count} bytes")
                chunks.append(chunk)
                size += len(chunk)
                self.fetcher.bytes_received += len(chunk)
        except (OSError, HTTPException) as exc:
            raise FetchError(f"{self.where} failed while reading: {_reason(exc)}") from None
        return b"".join(chunks)

    def close(self) -> None:
        self.response.close()


def _reason(exc: BaseException) -> str:
    import urllib.error

    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        if not isinstance(exc.reason, BaseException):
            return str(exc.reason)[:160]
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)[:160]


# -- the run's choice, and the one read for every weights file ---------------------

_TRUE = ("1", "true", "yes", "on")


@dataclass
class LfsHeaders:
    """Whether this run fetches the headers of LFS objects: a fetcher, or why not."""

    fetcher: HeaderFetcher | None
    off_reason: str = ""


def choose(setting: bool | None, *, credentials: bool = False, env: Mapping[str, str] | None = None) -> LfsHeaders:
    """On by default in GitHub Actions, opt-in elsewhere, off with ``HF_HUB_OFFLINE``.

    ``setting`` is ``--lfs-headers`` / ``--no-lfs-headers`` or the pyproject
    ``lfs-headers`` key; None means the default for where we run.
    """
    env = os.environ if env is None else env
    if env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return LfsHeaders(None, "HF_HUB_OFFLINE is set, so the LFS server was not asked")
    if setting is False:
        return LfsHeaders(None, "header fetching is turned off (--no-lfs-headers or lfs-headers = false)")
    if setting is None and env.get("GITHUB_ACTIONS") != "true":
        return LfsHeaders(None, "header fetching is off outside GitHub Actions (--lfs-headers turns it on)")
    return LfsHeaders(HeaderFetcher(env, credentials=credentials))


class NotFetched(Exception):
    """The weights file is an LFS pointer whose header was not fetched; ``message`` says why and what to do."""

    def __init__(self, message: str, pointer: Pointer) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


def pointer_header(path: Path, pointer: Pointer, lfs: LfsHeaders | None) -> Header:
    """The header of the object behind the pointer file at ``path``, fetched when ``lfs`` allows.

    Raises :class:`HeaderError` for a bad object (the local reader's messages)
    and :class:`NotFetched` when the header was not or could not be read.
    """
    if lfs is None or lfs.fetcher is None:
        reason = lfs.off_reason if lfs is not None else "header fetching is off"
        raise NotFetched(not_fetched_message(path.name, pointer, reason, path), pointer)
    try:
        return lfs.fetcher.header(path, pointer)
    except FetchError as exc:
        reason = f"fetching it failed: {exc.message}"
        raise NotFetched(not_fetched_message(path.name, pointer, reason, path), pointer) from None


def not_fetched_message(name: str, pointer: Pointer, reason: str, path: Path) -> str:
    return (
        f"`{name}` is a Git LFS pointer ({describe(pointer)}) whose header was not read: {reason}. "
        f"The checks that need the tensors were skipped; fetch the weights with `{fetch_hint(path)}`"
    )


# -- the finding's words --------------------------------------------------------


def fetch_hint(weights: Path) -> str:
    """How to get the real weights: ``git lfs pull`` for this one file."""
    root = repository_root(weights)
    try:
        relative = Path(os.path.abspath(weights)).relative_to(root).as_posix() if root else weights.as_posix()
    except ValueError:
        relative = weights.as_posix()
    return f'git lfs pull --include="{relative}"'


def describe(pointer: Pointer) -> str:
    return f"sha256:{pointer.oid[:12]}..., {pointer.size:,} bytes"
