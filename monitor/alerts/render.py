"""What an alert says: its Alertmanager labels and its rendered annotations.

Rendered when the alert changes state and stored with it, so Alertmanager, webhooks and
the JSON API all show the same text.
"""

from __future__ import annotations

from monitor.core.alerts import AlertState
from monitor.core.templates import render_template
from monitor.rules.model import Rule


def alert_labels(alert: AlertState, rule: Rule) -> dict[str, str]:
    """Alertmanager labels: the rule's own, then the ones calmon owns."""
    return {
        **rule.labels,
        "alertname": rule.name,
        "model": alert.series.model,
        "model_version": alert.series.model_version,
        "segment": alert.series.segment,
        "window": alert.series.window,
        "severity": rule.severity,
        **({} if alert.class_name is None else {"class": alert.class_name}),
    }


def rendered_annotations(alert: AlertState, rule: Rule) -> dict[str, str]:
    """The rule's annotation templates, filled in for this alert."""
    return {name: render(text, alert, rule) for name, text in rule.annotations.items()}


def render(template: str, alert: AlertState, rule: Rule) -> str:
    """Fill ``{model}``, ``{segment}``, ``{ece:.3f}``... into an annotation template.

    A metric missing from this evaluation renders as ``n/a`` (any format spec dropped).
    Rules checked the template at load (``core/templates.py``): it cannot raise here.
    """
    fields: dict[str, object] = {
        "rule": rule.name,
        "severity": rule.severity,
        "model": alert.series.model,
        "model_version": alert.series.model_version,
        "segment": alert.series.segment,
        "window": alert.series.window,
        "class": "" if alert.class_name is None else alert.class_name,
        **alert.values,
    }
    return render_template(template, fields)
