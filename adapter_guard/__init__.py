"""adapter-guard: lint and fix MLX LoRA adapter metadata before it is merged."""

__version__ = "0.1.0"
