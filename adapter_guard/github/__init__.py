"""The GitHub edge: PR context from the runner's environment, the sticky PR
comment and review suggestions (PyGithub), the step summary and action outputs.

PyGithub is imported inside the functions that talk to the API, so importing
this package costs nothing on the lint path. Install it with the ``github`` extra.
"""
