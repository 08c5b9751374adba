#!/usr/bin/env python3
"""Picks, in a request-count trace of bench/traces (NAME.counts.xz), a rise that recurred at the
same minute of its period on the earlier days, and writes what scenario 29_recurring_rise needs
to replay the days before it and the rise itself (stdlib only).

A rise: a minute whose count is at least RISE x the median of the 60 minutes before it. The rise
picked is the first one, at least DAYS days into the trace, that
  - is at least PICK_RISE x that median (so the live load clearly crosses the scenario's threshold),
  - had a rise within +-2 minutes of the same minute of the period (PERIOD minutes) in at least
    RECUR of the previous 12 periods,
  - follows 95 + LEAD calm minutes (no rise): the recent samples the forecast's trend is fitted on
    are calm, only the cycle can see it coming.
The scenario's "now" (T) is LEAD minutes before it. Every value is written as a ratio to the base:
the median count per minute over the 60 minutes before T.

Writes to OUT_DIR:
  minutes   one ratio per minute from T - DAYS days to T - 95 min (the 1-minute rollups)
  samples   one ratio per 5 s from T - 95 min to T (the recorded samples)
  live      one ratio per 30 s from T for LIVE minutes (the pgbench rate after T)
  info      key=value: the rise's minute after T, its height, how often it recurred, the trace time

Usage: recurring_rise.py TRACE.counts.xz OUT_DIR
"""

import lzma
import statistics
import sys

PERIOD = 120
RISE = 2.2
PICK_RISE = 2.8
RECUR = 8
DAYS = 3
LEAD = 9
LIVE = 16


def read_counts(path):
    interval = None
    counts = []
    with lzma.open(path, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            if line.startswith("interval_secs"):
                interval = int(line.split()[1])
                continue
            counts.append(float(line))
    if interval != 5:
        sys.exit(f"{path}: needs counts per 5 s, has interval_secs {interval}")
    return counts


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    c5 = read_counts(sys.argv[1])
    out = sys.argv[2]
    m = [sum(c5[12 * i : 12 * i + 12]) for i in range(len(c5) // 12)]
    rises = set()
    for i in range(60, len(m)):
        if m[i] >= RISE * statistics.median(m[i - 60 : i]):
            rises.add(i)

    def recurred(i):
        hits = 0
        for k in range(1, 13):
            j = i - k * PERIOD
            if any(j + d in rises for d in range(-2, 3)):
                hits += 1
        return hits

    pick = None
    first = DAYS * 1440 + 95 + LEAD + 60
    for i in sorted(rises):
        if i < first or i - 1 in rises:
            continue
        if m[i] < PICK_RISE * statistics.median(m[i - 60 : i]):
            continue
        if any(j in rises for j in range(i - LEAD - 95, i)):
            continue
        hits = recurred(i)
        if hits >= RECUR:
            pick = (i, hits)
            break
    if pick is None:
        sys.exit("no rise recurred often enough in this trace")
    i, hits = pick
    t = i - LEAD
    base = statistics.median(m[t - 60 : t])
    minutes = [v / base for v in m[t - DAYS * 1440 : t - 95]]
    samples = [12 * v / base for v in c5[12 * (t - 95) : 12 * t]]
    live = [2 * sum(c5[12 * t + 6 * k : 12 * t + 6 * k + 6]) / base for k in range(2 * LIVE)]
    with open(f"{out}/minutes", "w") as f:
        f.write("\n".join(f"{v:.4f}" for v in minutes) + "\n")
    with open(f"{out}/samples", "w") as f:
        f.write("\n".join(f"{v:.4f}" for v in samples) + "\n")
    with open(f"{out}/live", "w") as f:
        f.write("\n".join(f"{v:.4f}" for v in live) + "\n")
    peak = max(m[i : i + 10]) / base
    with open(f"{out}/info", "w") as f:
        f.write(f"rise_minute={LEAD}\n")
        f.write(f"rise_height={m[i] / base:.2f}\n")
        f.write(f"rise_peak={peak:.2f}\n")
        f.write(f"recurred={hits}\n")
        f.write(f"trace_minute={i}\n")
        f.write(f"trace_day={i // 1440}\n")
        f.write(f"trace_time={(i % 1440) // 60:02d}:{i % 60:02d}\n")


if __name__ == "__main__":
    main()
