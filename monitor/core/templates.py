"""Annotation templates: ``"ECE {ece:.3f} on {model} {segment}"``, rendered one way.

Rules check every template at load by rendering it once with sample values of the
types an alert passes (:func:`template_problem`): text for the series' names, a float
for every metric. So a spec that does not fit its field (``{model:.3f}``, ``{ece:d}``)
or a malformed one is a config error that ``calmon check-config`` reports, not an
exception when the alert fires, inside the transaction that stores it.

>>> render_template("ECE {ece:.3f} on {model}", {"ece": 0.0712, "model": "fraud"})
'ECE 0.071 on fraud'
>>> render_template("PSI {psi_raw_score:.2f}", {})
'PSI n/a'
>>> template_problem("{model:.3f}", text_fields={"model"}, number_fields=set())
"{model:.3f}: Unknown format code 'f' for object of type 'str'"
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Mapping

#: Sample values: as an alert renders them (text for names, a float for metrics).
_SAMPLE_TEXT = "sample"
_SAMPLE_NUMBER = 0.5
_CONVERSIONS: dict[str, Callable[[object], str]] = {"r": repr, "s": str, "a": ascii}


def render_template(template: str, fields: Mapping[str, object]) -> str:
    """Fill the fields into ``template``; a field that is missing or None renders as
    ``n/a`` (its format spec dropped: there is nothing to format)."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        value = fields.get(name)
        if value is None:
            out.append("n/a")
            continue
        if conversion:
            value = _CONVERSIONS[conversion](value)
        out.append(format(value, spec or ""))
    return "".join(out)


def template_problem(
    template: str, *, text_fields: Collection[str], number_fields: Collection[str]
) -> str | None:
    """What is wrong with ``template``, or None if every field renders.

    The template is rendered with a sample of each field's type, so whatever renders
    here renders at fire time too (a metric is a float or missing, never another type).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"bad template: {exc}"
    unknown = sorted(
        {name for _, name, _, _ in parsed if name is not None}
        - set(text_fields)
        - set(number_fields)
    )
    if unknown:
        return f"unknown field(s) {unknown}"
    samples: dict[str, object] = dict.fromkeys(number_fields, _SAMPLE_NUMBER)
    samples.update(dict.fromkeys(text_fields, _SAMPLE_TEXT))
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        field = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if conversion and conversion not in _CONVERSIONS:
            return f"{field}: unknown conversion !{conversion} (use !r, !s or !a)"
        try:
            render_template(field, samples)
        except (ValueError, TypeError) as exc:
            return f"{field}: {exc}"
    return None
