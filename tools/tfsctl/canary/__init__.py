"""Canary analysis for version labels: judge a new version by label, on every replica, against
the version it would replace, then promote ``stable`` or move ``canary`` back.

``spec`` (the YAML check spec, defaults and schema), ``judge`` (pure verdicts on measured
data), ``shadow`` (paired stable/canary requests per replica under a rate limit),
``prometheus`` (live traffic by label from the Prometheus HTTP API), ``report`` (JSON and
HTML), ``run`` (the orchestration over the release operations, under the release's lock).
"""
