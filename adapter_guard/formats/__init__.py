"""The rules, one module of pure functions per adapter format.

``shared`` holds what every format shares (the JSON document, the files
beside the config, value checks); ``mlx_lm`` holds mlx-lm's config rules.
None of them reads a file: ``adapter_guard.readers`` does that.
"""
