"""Release automation: deploy, scale, two-phase label promotion, rollback, fleet status.

Pure decisions live in modules without I/O (``values``, ``plan``, ``scale``,
``fleet``, ``history``); side effects in thin adapters that take their client in
the constructor (``helm``, ``kube``, ``replicas``, ``endpoints``); the command
flows (``promote``, ``deploy``, ``status``, ``validate``) wire them together.
"""

from __future__ import annotations

# Seconds a command may take by default. A label move is a ConfigMap change that reaches the pods'
# mounted file on kubelet's next pod sync (syncFrequency, 1 min by default) and TF Serving's next
# poll; a promotion makes two or three such moves (load, label, retire): 241 s for one replica on
# kubelet's defaults (make bench --only realnode). Helm's own --timeout default is 5 min.
DEFAULT_TIMEOUT = 600.0
