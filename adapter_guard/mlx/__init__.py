"""MLX edges of adapter-guard. Everything here imports mlx / mlx_lm lazily.

Nothing under this package is imported on the lint path.
"""
