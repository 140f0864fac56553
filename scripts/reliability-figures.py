#!/usr/bin/env python3
"""Writes the figures the fault tests measured (one JSON line per fault, written by the suite's
`FaultReport` into the file `TE_FAULT_REPORT` names) into docs/reliability.md, between the
`<!-- figures:begin -->` and `<!-- figures:end -->` markers, so the page shows what the last
`make test` measured. Usage: reliability-figures.py FAULTS_JSONL RELIABILITY_MD"""
import json
import sys
from collections import OrderedDict

faults_path, page_path = sys.argv[1:3]
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

rows = OrderedDict()
try:
    with open(faults_path) as faults:
        for number, line in enumerate(faults, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                fault = str(record["fault"])
                figures = [(str(f["name"]), float(f["value"])) for f in record["figures"]]
            except (ValueError, KeyError, TypeError) as error:
                sys.exit(f"reliability-figures: {faults_path}:{number}: not a fault record ({error})")
            rows[fault] = figures  # the last run of a fault wins
except FileNotFoundError:
    sys.exit(f"reliability-figures: {faults_path}: no figures (run the suite with TE_FAULT_REPORT set)")

def number(value):
    return f"{value:,.0f}" if value == int(value) or abs(value) >= 100 else f"{value:,.2f}"

# Property runs carry their seed in the name; keep them apart from the fault table.
table = ["| fault | figures |", "|---|---|"]
for fault, figures in sorted(rows.items()):
    cell = "; ".join(f"{name} {number(value)}" for name, value in figures)
    table.append(f"| {fault.replace('|', '/')} | {cell} |")

with open(page_path) as page:
    text = page.read()
if BEGIN not in text or END not in text:
    sys.exit(f"reliability-figures: {page_path} has no {BEGIN} … {END} markers")
head, rest = text.split(BEGIN, 1)
_, tail = rest.split(END, 1)
body = "\n".join(["", "Written by `make test` from the suite's own measurements (scripts/reliability-figures.py):", ""]
                 + table + [""])
with open(page_path, "w") as page:
    page.write(head + BEGIN + body + END + tail)
print(f"reliability-figures: {len(rows)} faults written into {page_path}")
