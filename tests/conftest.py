import sys
from pathlib import Path

# The shared builders live next to the tests; make ``import builders`` work from any rootdir.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Corpora written by the real PEFT / mlx-vlm / old mlx-lm writers, built once per session.
pytest_plugins = ["writer_fixtures"]
