"""One markdown row from `gos bench --per-op --json` (stdin): the model's MACs, median latency,
spread, the spread of the fixed loop timed right after (the machine's own steadiness), and the
three operators taking the most time, with their time share vs MACs share."""
import json
import sys

report = json.load(sys.stdin)
ops = sorted(report["ops"], key=lambda op: -op["time_share"])[:3]
top = "; ".join("%s %.0f%% vs %.0f%%" % (op["node"], 100 * op["time_share"], 100 * op["macs_share"]) for op in ops)
macs = sum(op["macs"] for op in report["ops"])
machine = report["machine_reference"]
print("| %s | %s | %.3f | %.1f%% | %.1f%% | %s |" % (sys.argv[1], format(macs, ","), report["median_ms"], 100 * report["spread"],
                                                  100 * machine["spread"], top))
