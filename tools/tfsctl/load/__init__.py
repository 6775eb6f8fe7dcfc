"""Load generation and autoscaling verification (Locust based).

Pure modules (no I/O, no Locust import): ``shapes`` (load shapes as stage
tables), ``thresholds`` (pass/fail limits), ``payload`` (request bodies from a
model signature), ``options`` (the locustfile's knobs), ``evaluate`` (the
autoscaling verdict from a recorded timeline).

Adapters: ``runner`` (Locust's library API; importing it monkey-patches the
process with gevent), ``grpc_user`` (TF Serving gRPC requests on a
gevent-compatible channel), ``kube`` (HPA/Deployment watches, per-pod request
counts), ``distributed`` (master and workers in the cluster), ``report``
(report.json, report.html and the PNG plot) and ``verify`` (the
``verify-autoscaling`` orchestration).
"""

from __future__ import annotations
