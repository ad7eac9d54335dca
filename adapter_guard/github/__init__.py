"""The GitHub edge: the Action's entry point (action.py), PR context from the
runner's environment (env.py), the sticky PR comment and review suggestions
(comment.py, diff.py; PyGithub), autofix pushes (autofix.py), and the fork
comment poster for a ``workflow_run`` job (post_artifact.py).

The ``adapter-guard`` CLI imports none of this. PyGithub is imported inside the
functions that talk to the API, so importing this package costs nothing on
the lint path. Install it with the ``github`` extra.
"""
