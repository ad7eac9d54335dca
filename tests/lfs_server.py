"""A Git LFS server stand-in on 127.0.0.1, for tests.

Written from git-lfs's documentation, not from adapter-guard's client:

- ``docs/api/batch.md``: ``POST <lfs-url>/objects/batch`` with ``Accept`` and
  ``Content-Type: application/vnd.git-lfs+json``; the answer is 200 with one
  entry per requested object, holding either ``actions.download`` /
  ``actions.upload`` (``href``, ``header``, ``expires_in``) or a per-object
  ``error`` (404 for an object the server does not have); 401 with
  ``LFS-Authenticate`` when credentials are needed but were not sent; error
  bodies carry ``message``; 406 when ``Accept`` is not the LFS media type.
- ``docs/api/basic-transfers.md``: a GET on the download ``href`` with the
  action's ``header`` returns the raw bytes; an upload is a PUT of the raw
  bytes. The ``href`` points at a second server (the "storage") on another
  port, which accepts only requests carrying the header the batch handed out.
- Byte ranges are RFC 9110's: one ``bytes=first-last`` / ``first-`` /
  ``-suffix`` range answered 206 with ``Content-Range: bytes first-last/size``,
  416 with ``bytes */size`` when unsatisfiable. ``range_support=False`` serves
  every GET whole (200), as a server that ignores Range does.

The real git-lfs client pushes to and clones from it in the tests, which checks
the stand-in against the client the docs describe.

Faults for the tests (attributes, changeable between requests): ``batch_status``,
``missing`` (oids answered with a per-object 404), ``download_status``,
``content_range`` (a fixed, wrong Content-Range), ``content_length``,
``prefix`` (bytes served in place of the object's first bytes), ``truncate``
(stop the body after this many bytes), ``stall`` (hold the download until the
server stops; ``stall_batch`` for the batch endpoint), ``batch_auth`` (the
Authorization the batch endpoint demands), ``drip`` (seconds between the body's bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MEDIA_TYPE = "application/vnd.git-lfs+json"
STORAGE_TOKEN = "RemoteAuth storage-secret"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


class LfsServer:
    def __init__(self, *, range_support: bool = True) -> None:
        self.range_support = range_support
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.reset()
        self._api = ThreadingHTTPServer(("127.0.0.1", 0), self._api_handler())
        self._storage = ThreadingHTTPServer(("127.0.0.1", 0), self._storage_handler())
        for server in (self._api, self._storage):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    # -- what the tests read and set ------------------------------------------------

    @property
    def url(self) -> str:
        """The LFS server URL (``lfs.url``)."""
        return f"http://127.0.0.1:{self._api.server_address[1]}/models.git/info/lfs"

    @property
    def storage_netloc(self) -> str:
        return f"127.0.0.1:{self._storage.server_address[1]}"

    def reset(self) -> None:
        """Clear the counters and faults (the objects stay)."""
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []  # (server, method, path, headers)
        self.batch_bodies: list[dict] = []
        self.sent: dict[str, int] = {}  # object bytes written per oid
        self.batch_status: int | None = None
        self.batch_auth: str | None = None
        self.missing: set[str] = set()
        self.download_status: int | None = None
        self.content_range: str | None = None
        self.content_length: str | None = None
        self.prefix: bytes | None = None
        self.truncate: int | None = None
        self.stall = False
        self.stall_batch = False
        self.drip: float | None = None

    def add(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        self.objects[oid] = data
        return oid

    def batch_requests(self) -> list[dict]:
        return [h for s, m, p, h in self.requests if s == "api" and p.endswith("/objects/batch")]

    def downloads(self) -> list[dict]:
        return [h for s, m, p, h in self.requests if s == "storage" and m == "GET"]

    def close(self) -> None:
        self.released.set()
        for server in (self._api, self._storage):
            server.shutdown()
            server.server_close()

    # -- the batch API ----------------------------------------------------------------

    def _api_handler(self):
        outer = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                headers = dict(self.headers.items())
                with outer.lock:
                    outer.requests.append(("api", "POST", self.path, headers))
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not self.path.endswith("/objects/batch"):
                    return self._json(404, {"message": "Not found"})
                if MEDIA_TYPE not in self.headers.get("Accept", ""):
                    return self._json(406, {"message": "Accept must be " + MEDIA_TYPE})
                if outer.batch_auth is not None and self.headers.get("Authorization") != outer.batch_auth:
                    return self._json(401, {"message": "Credentials needed"},
                                      {"LFS-Authenticate": 'Basic realm="Git LFS"'})
                if outer.batch_status is not None:
                    return self._json(outer.batch_status, {"message": "Forbidden", "request_id": "1"})
                try:
                    request = json.loads(body)
                except ValueError:
                    return self._json(422, {"message": "bad JSON"})
                with outer.lock:
                    outer.batch_bodies.append(request)
                if outer.stall_batch:
                    outer.released.wait(60)
                    return
                operation = request.get("operation")
                answers = []
                for item in request.get("objects", []):
                    oid, size = item["oid"], item["size"]
                    href = f"http://{outer.storage_netloc}/objects/{oid}"
                    action = {"href": href, "header": {"Authorization": STORAGE_TOKEN}, "expires_in": 3600}
                    if operation == "download":
                        if oid not in outer.objects or oid in outer.missing:
                            answers.append({"oid": oid, "size": size,
                                            "error": {"code": 404, "message": "Object does not exist"}})
                        else:
                            answers.append({"oid": oid, "size": size, "authenticated": True,
                                            "actions": {"download": action}})
                    elif operation == "upload":
                        entry = {"oid": oid, "size": size, "authenticated": True}
                        if oid not in outer.objects:  # the docs: omit actions for objects the server has
                            entry["actions"] = {"upload": action}
                        answers.append(entry)
                    else:
                        return self._json(422, {"message": "unknown operation"})
                self._json(200, {"transfer": "basic", "objects": answers})

            def _json(self, status: int, payload: dict, extra: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", MEDIA_TYPE)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    # -- the storage the hrefs point at ----------------------------------------------------

    def _storage_handler(self):
        outer = self

        class Handler(_Quiet):
            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == STORAGE_TOKEN:
                    return True
                self._empty(401)
                return False

            def do_PUT(self) -> None:
                with outer.lock:
                    outer.requests.append(("storage", "PUT", self.path, dict(self.headers.items())))
                if not self._authorised():
                    return
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                oid = self.path.rsplit("/", 1)[-1]
                if hashlib.sha256(data).hexdigest() != oid:
                    return self._empty(422)
                outer.objects[oid] = data
                self._empty(200)

            def do_GET(self) -> None:
                with outer.lock:
                    outer.requests.append(("storage", "GET", self.path, dict(self.headers.items())))
                if not self._authorised():
                    return
                if outer.stall:
                    outer.released.wait(60)
                    return
                if outer.download_status is not None:
                    return self._empty(outer.download_status)
                oid = self.path.rsplit("/", 1)[-1]
                data = outer.objects.get(oid)
                if data is None:
                    return self._empty(404)
                if outer.prefix is not None:
                    data = outer.prefix + data[len(outer.prefix):]
                size = len(data)
                status, first, last = 200, 0, size - 1
                wanted = self.headers.get("Range")
                if wanted and outer.range_support:
                    match = _RANGE.fullmatch(wanted.strip())
                    if match is None or match[1] == match[2] == "":
                        return self._empty(416, {"Content-Range": f"bytes */{size}"})
                    if match[1] == "":  # suffix range: the last n bytes
                        first = max(size - int(match[2]), 0)
                    else:
                        first = int(match[1])
                        if match[2]:
                            last = min(int(match[2]), size - 1)
                    if first >= size or first > last:
                        return self._empty(416, {"Content-Range": f"bytes */{size}"})
                    status = 206
                body = data[first:last + 1]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", outer.content_length or str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", outer.content_range or f"bytes {first}-{last}/{size}")
                self.end_headers()
                if outer.truncate is not None:
                    body = body[: outer.truncate]
                step = 1 if outer.drip else 1 << 16
                for start in range(0, len(body), step):
                    chunk = body[start:start + step]
                    if outer.drip:
                        time.sleep(outer.drip)
                    # Counted before the write: once written, the client may finish (and the
                    # test reset the counters) before this thread runs again.
                    with outer.lock:
                        outer.sent[oid] = outer.sent.get(oid, 0) + len(chunk)
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:  # the client closed the connection: stop sending
                        with outer.lock:
                            outer.sent[oid] -= len(chunk)
                        self.close_connection = True
                        return
                if outer.truncate is not None:
                    self.close_connection = True

            def _empty(self, status: int, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()

        return Handler
