"""Turn locust's --csv statistics into the markdown table of docs/performance.md and say
whether the targets are met: 0 errors, page p95 <= 300 ms, slice image p95 <= 150 ms.

Locust writes its percentiles rounded to two significant figures (so a p99 of "800" may stand
for 797 ms, above the exact maximum); a percentile is therefore printed as at most the maximum."""
from __future__ import annotations

import csv
import sys

PAGE_P95_MS = 300
IMAGE_P95_MS = 150


def main(stats_csv: str) -> int:
    rows = list(csv.DictReader(open(stats_csv)))
    lines = [
        "| Endpoint | Requests | Failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    for row in rows:
        name = row["Name"]
        if name == "Aggregated":
            name = "**All requests**"
        slowest = float(row["Max Response Time"])
        p50, p95, p99 = (min(float(row[q]), slowest) for q in ("50%", "95%", "99%"))
        target = ""
        if name.startswith("page:") and p95 > PAGE_P95_MS or name.startswith("image: /scans/slices/[id]/image.png") and p95 > IMAGE_P95_MS:
            target = " ✗"
            ok = False
        lines.append(
            f"| {name}{target} | {row['Request Count']} | {row['Failure Count']} | {float(row['Requests/s']):.1f} "
            f"| {p50:.0f} | {p95:.0f} | {p99:.0f} | {slowest:.0f} |"
        )
    total = next(r for r in rows if r["Name"] == "Aggregated")
    errors = int(total["Failure Count"])
    rate = errors / max(1, int(total["Request Count"]))
    ok = ok and errors == 0
    lines.append("")
    lines.append(f"Error rate: {errors} of {total['Request Count']} requests ({rate:.2%}); "
                 f"throughput {float(total['Requests/s']):.1f} requests/s.")
    lines.append(f"Targets (0 errors, page p95 ≤ {PAGE_P95_MS} ms, slice image p95 ≤ {IMAGE_P95_MS} ms): "
                 f"{'met' if ok else 'NOT met'}.")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
