"""Kill rate per module of the last `mutmut run` (``make mutants``; docs/testing.md).

A mutant is killed when a test fails on it, or when it makes a test hang (mutmut's
timeout: an endless loop is caught too). Equivalent mutants (no test could tell them
from the original) are listed below with why, and left out of the rate; every other
survivor is printed, so a new one is seen. Exits 1 if a module is below the target.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

TARGET = 0.90
KILLED = {"killed", "timeout"}
#: mutant -> why it is equivalent. The numbers are mutmut's, stable while the module's
#: code is unchanged; a change to a module shows its survivors again.
EQUIVALENT = {
    "monitor.store.buckets.x_cover__mutmut_4": "end=None: as falsy as end=False",
    "monitor.alerts.signing.x_signed_headers__mutmut_7": "content-type: header names ignore case",
    "monitor.alerts.signing.x_signed_headers__mutmut_8": "CONTENT-TYPE: header names ignore case",
    "monitor.store.outbox.x_take_next__mutmut_20": "limit(None): the limit only bounds the work",
    "monitor.store.outbox.x_take_next__mutmut_24": (
        "ties on next_attempt_ms come back in insertion (id) order without the second key too"
    ),
    "monitor.store.outbox.x_take_next__mutmut_38": (
        "state == pending in the lease UPDATE: a row finished since it was seen has a moved "
        "next_attempt_ms (its lease), which the UPDATE checks already"
    ),
    "monitor.store.write.join.x_add_predictions__mutmut_23": (
        "zip strict=None: series and predictions are built together, never of different lengths"
    ),
    "monitor.store.write.join.x_add_predictions__mutmut_26": (
        "zip without strict: series and predictions are built together, never of different lengths"
    ),
    "monitor.store.write.join.x_add_predictions__mutmut_27": (
        "zip strict=False: series and predictions are built together, never of different lengths"
    ),
    "monitor.ingest.worker.xǁIngestWorkerǁstall_problem__mutmut_3": (
        ">= instead of >: the idle time is a float of the monotonic clock, never exactly "
        "max_poll_interval_ms"
    ),
    "monitor.store.write.join.x_join_either__mutmut_16": (
        "an assert weakened (and -> or): callers never pass a binary event a class label "
        "(label_fits dropped it before), so the assert never fails either way"
    ),
    "monitor.store.db.health.xǁStoreHealthǁ_check__mutmut_10": "SQL keywords ignore case",
    "monitor.store.db.health.xǁStoreHealthǁ_check__mutmut_11": (
        "unquoted identifiers ignore case in SQLite and PostgreSQL"
    ),
    "monitor.store.write.join.x_add_joins__mutmut_16": (
        "zip strict=None: the columns are built together, never of different lengths"
    ),
    "monitor.store.write.join.x_add_joins__mutmut_19": (
        "zip without strict: the columns are built together, never of different lengths"
    ),
    "monitor.store.alerts.x_alerts_to_send__mutmut_4": (
        "only resolved alerts carry resolved_ms: the engine starts every episode without it"
    ),
}

#: Modules checked only in some of their functions (`make mutants` runs these names):
#: the ingest worker's commit order and readiness, not its connection set-up, logging
#: or lag gauges. Mutants of its other functions are left out of the rate.
SCOPE = {
    "monitor.ingest.worker": (
        "ǁprocess__",
        "ǁ_write__",
        "ǁ_commit__",
        "ǁ_count__",
        "ǁ_retry__",
        "ǁbroker_problem__",
        "ǁstall_problem__",
    ),
}


def in_scope(name: str) -> bool:
    module = name.rsplit(".", 1)[0]
    return module not in SCOPE or any(part in name for part in SCOPE[module])


def mutant_patterns() -> list[str]:
    """The names `make mutants` gives `mutmut run`: each module of `only_mutate` whole,
    or its in-scope functions (SCOPE)."""
    config = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]
    patterns = []
    for path in config["only_mutate"]:
        module = path.removesuffix(".py").replace("/", ".")
        if module in SCOPE:
            patterns += [f"{module}.*{part}*" for part in SCOPE[module]]
        else:
            patterns.append(f"{module}.*")
    return patterns


def results(mutmut: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            found[name] = status
    return found


def main() -> int:
    if sys.argv[1:] == ["--patterns"]:
        print("\n".join(mutant_patterns()))
        return 0
    mutmut = Path(sys.executable).with_name("mutmut")
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for name, status in sorted(results(mutmut).items()):
        module = name.rsplit(".", 1)[0]
        if not in_scope(name):
            continue
        if name in EQUIVALENT:
            by_module[module]["equivalent"] += 1
            continue
        if status == "not checked":  # the run was stopped before it got there
            by_module[module]["unchecked"] += 1
            continue
        outcome = "killed" if status in KILLED else "survived"
        by_module[module][outcome] += 1
        if outcome == "survived":
            survivors[module].append(f"{name} ({status})")
    failed = False
    print(f"{'module':40} {'mutants':>8} {'unchecked':>9} {'equiv.':>7} {'killed':>7} {'rate':>7}")
    for module, counts in sorted(by_module.items()):
        counted = counts["killed"] + counts["survived"]
        rate = counts["killed"] / counted if counted else 1.0
        failed |= rate < TARGET
        total = counted + counts["equivalent"] + counts["unchecked"]
        failed |= counts["unchecked"] > 0
        print(
            f"{module:40} {total:8} {counts['unchecked']:9} {counts['equivalent']:7} "
            f"{counts['killed']:7} {rate:7.1%}"
        )
    for module, names in sorted(survivors.items()):
        print(f"\nsurvived in {module}:")
        for name in names:
            print(f"  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
