import sys
from pathlib import Path

# The shared builders live next to the tests; make ``import builders`` work from any rootdir.
sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_plugins = ["mlx_trainer_fixtures"]
