"""Other releases of a runtime (mlx-lm 0.18, PEFT 0.13, ...) in venvs of their own, for target verdicts.

A target rule claims "this loads on X 0.18 and that does not": the test proves it
by running X 0.18 itself. Each release gets a venv, created once and kept under
``$ADAPTER_GUARD_RUNTIMES`` (default ``~/.cache/adapter-guard-tests/runtimes``),
keyed by the requirements and this interpreter. With ``inherit=True`` the venv
installs only the pinned packages (``--no-deps``) and sees this environment's
site-packages *after* its own through a ``.pth`` file, so the old PEFT runs on the
torch already here instead of downloading another; with ``inherit=False`` it is a
full, independent install.

The venv runs a script the test passes in and answers with one JSON line on
stdout: nothing from the checked adapter is ever executed, only the runtime's code.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path.home() / ".cache" / "adapter-guard-tests" / "runtimes"


def root() -> Path:
    return Path(os.environ.get("ADAPTER_GUARD_RUNTIMES", DEFAULT_ROOT))


def runtime_python(requirements: tuple[str, ...], *, inherit: bool = True, timeout: float = 900) -> Path:
    """The python of a venv holding ``requirements`` (made on first use; safe across xdist workers)."""
    key = hashlib.sha256(json.dumps([list(requirements), inherit, sys.version, sys.prefix]).encode()).hexdigest()[:12]
    name = "-".join(r.replace("==", "-").replace("[", "").replace("]", "") for r in requirements)[:60]
    venv = root() / f"{name}-{key}"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=timeout)
            if inherit:
                purelib = subprocess.run(
                    [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    check=True, capture_output=True, text=True,
                ).stdout.strip()
                here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
                # A test env may itself layer site-packages (a worktree venv over a shared one, via a .pth):
                # inherit those too, or the old release finds no torch.
                here |= {p for p in sys.path if p.endswith("site-packages")}
                Path(purelib, "zz_inherit_test_env.pth").write_text("\n".join(sorted(here)) + "\n")
            command = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            if inherit:
                command.append("--no-deps")
            subprocess.run(command + list(requirements), check=True, timeout=timeout)
            ready.write_text(json.dumps(list(requirements)))
    return python


def run_json(python: Path, script: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> Any:
    """Run ``script`` with ``python`` and return the JSON of its last stdout line.

    Raises AssertionError with the script's stderr when it fails or prints no JSON.
    """
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
    full_env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"runtime script failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def installed_version(python: Path, distribution: str) -> str:
    """The version of ``distribution`` that ``python`` imports (proves the pin took)."""
    return run_json(python, f"import json, importlib.metadata as m; print(json.dumps(m.version({distribution!r})))")
