"""Release automation: deploy, scale, two-phase label promotion, rollback, fleet status.

Pure decisions live in modules without I/O (``values``, ``plan``, ``scale``,
``fleet``, ``history``); side effects in thin adapters that take their client in
the constructor (``helm``, ``kube``, ``replicas``, ``endpoints``); the command
flows (``promote``, ``deploy``, ``status``, ``validate``) wire them together.
"""

from __future__ import annotations
