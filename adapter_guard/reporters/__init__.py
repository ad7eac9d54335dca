"""Output formats: interchangeable renderers of the same results.

Each renderer is ``render(results, *, fix_mode) -> str``. They are imported
lazily so the lint path only loads the one asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..findings import FileResult

#: format name -> module defining ``render``.
RENDERERS = {
    "text": "adapter_guard.reporters.text",
    "json": "adapter_guard.reporters.json",
    "github": "adapter_guard.reporters.github",
    "sarif": "adapter_guard.reporters.sarif",
}

Renderer = Callable[..., str]


def get_renderer(name: str) -> Renderer:
    return importlib.import_module(RENDERERS[name]).render


def render(name: str, results: list[FileResult], *, fix_mode: bool, verbose: bool = False) -> str:
    if name == "text":  # the one human format: --verbose adds each adapter's format
        return get_renderer(name)(results, fix_mode=fix_mode, verbose=verbose)
    return get_renderer(name)(results, fix_mode=fix_mode)
