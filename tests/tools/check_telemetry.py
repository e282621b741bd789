#!/usr/bin/env python3
"""Validates a telemetry JSON-lines file against tests/data/telemetry.schema.json.

usage: check_telemetry.py SCHEMA EVENTS.jsonl
Every line must be one JSON object that the schema accepts; prints `N events OK` or the
first failing line with the schema's reason, and exits 1 on failure.
"""
import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft202012Validator(schema)
    n = 0
    for i, line in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            sys.exit(f"line {i}: not JSON: {e}")
        errors = sorted(validator.iter_errors(event), key=lambda e: e.path)
        if errors:
            sys.exit(f"line {i}: {errors[0].message}\n{line}")
        n += 1
    if n == 0:
        sys.exit("no events")
    print(f"{n} events OK")


if __name__ == "__main__":
    main()
