"""Metrics for xp runs: ``from xp_logging import log_metric; log_metric("accuracy", 0.93)``.

xp puts this module on PYTHONPATH for every run, whatever the target, so scripts need nothing
installed. A metric travels as one line on standard output that xp takes out of the log and
records in the run history while the run goes.
"""

import json
import sys
import threading

__all__ = ["log_metric", "log"]

_PREFIX = "\x1exp-metric "
_lock = threading.Lock()


def _plain(value):
    """Turns numpy scalars and arrays, and other odd values, into JSON-friendly ones."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def log_metric(name, value):
    """Records ``value`` (a number, a string, or a list of them) as the next point of ``name``."""
    line = _PREFIX + json.dumps({"name": str(name), "value": value}, default=_plain) + "\n"
    with _lock:
        sys.stdout.write(line)
        sys.stdout.flush()


log = log_metric
