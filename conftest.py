"""Collection rules for the whole repository (tests/ and the doctests of src/signals/)."""

from __future__ import annotations

import importlib.util

# signals.spark imports PySpark at the top: without the spark extra its doctests are not collected
# (tests/test_spark.py skips itself with the reason).
collect_ignore = [] if importlib.util.find_spec("pyspark") else ["src/signals/spark.py"]
