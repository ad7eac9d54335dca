"""adapter-guard: lint and fix LoRA adapter metadata (PEFT, mlx-lm, mlx-vlm) before it is merged."""

__version__ = "0.1.0"
