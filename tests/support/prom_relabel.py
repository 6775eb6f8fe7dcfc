"""Prometheus' relabelling, for unit tests of the scrape configs the add-ons ship."""

from __future__ import annotations

import re


def relabel(rules: list[dict], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling (keep, drop, replace) for the rules used here; None when dropped.

    The actions as ``model/relabel/relabel.go`` (``relabel``) applies them: source labels joined
    with ``;``, the regex anchored at both ends, ``$1`` in the replacement.
    """
    out = dict(labels)
    for r in rules:
        value = ";".join(out.get(s, "") for s in r.get("source_labels", []))
        regex = re.compile(f"^(?:{r.get('regex', '(.*)')})$")
        m = regex.match(value)
        action = r.get("action", "replace")
        if action == "keep" and not m:
            return None
        if action == "drop" and m:
            return None
        if action == "replace" and m:
            replacement = r.get("replacement", "$1")
            # Prometheus writes groups as $1; Python's expand wants \1
            out[r["target_label"]] = m.expand(re.sub(r"\$(\d+)", r"\\\1", replacement))
    return out
