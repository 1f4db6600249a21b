"""Summarise `go test -json` output of one gophercloud acceptance suite."""
import collections
import json
import re
import sys

suite, path = sys.argv[1], sys.argv[2]
result, output = {}, collections.defaultdict(list)
for line in open(path, encoding="utf-8", errors="replace"):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    test = ev.get("Test")
    if not test:
        continue
    top = test.split("/")[0]
    if ev.get("Action") in ("pass", "fail", "skip") and "/" not in test:
        result[test] = ev["Action"]
    if ev.get("Action") == "output":
        output[top].append(ev["Output"])
counts = collections.Counter(result.values())
print(f"{suite}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
for test in sorted(t for t, a in result.items() if a == "fail"):
    why = [re.sub(r"\x1b\[[0-9;]*m", "", o).strip() for o in output[test] if "Failure" in o or "panic:" in o]
    print(f"  FAIL {test}: {(why[0] if why else '')[:240]}")
