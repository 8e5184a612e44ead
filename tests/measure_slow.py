"""Append the tests of a junit XML report that took over 0.2 s to tests/slow_tests.txt.

Usage: ``python tests/measure_slow.py REPORT.xml``. Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

import pathlib
import sys
import xml.etree.ElementTree as ET

LIMIT = 0.2


def main(report: str) -> None:
    listing = pathlib.Path(__file__).with_name("slow_tests.txt")
    lines = listing.read_text().splitlines()
    known = {line for line in lines if line and not line.startswith("#")}
    for case in ET.parse(report).iter("testcase"):
        if float(case.get("time", 0)) > LIMIT:
            known.add(f"{case.get('classname').replace('.', '/')}.py::{case.get('name')}")
    header = [line for line in lines if line.startswith("#")]
    listing.write_text("\n".join(header + sorted(known)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
