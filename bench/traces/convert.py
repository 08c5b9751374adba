#!/usr/bin/env python3
"""Converts public request logs into the request-count traces that bench/policy_replay.sh replays.

Each output file (NAME.counts.xz, written to OUT_DIR, by default $CITUS_AUTOSCALE_TRACES or
/var/cache/citus_autoscale/traces: the traces are not kept in the repository) is text: `#` comment lines (source, window, bin),
one `interval_secs N` line, then one request count per line, one line per N seconds, in order.
The replay turns the counts into 5-second demand itself (core/examples/replay.rs, `real_demand`):
each bin's count spread evenly over its 5-s slots, a 60-s moving sum, scaled so that the 99.9th
percentile needs the max workers (16 at 80%).

Inputs (see bench/traces/README.md for where each comes from and its license):
  worldcup  per-minute request counts of the 1998 World Cup web site, CSV `YYYY-MM-DD HH:MM:SS,count`
  nasa      per-second request counts of the NASA KSC web server (July-August 1995), space separated
  twitter   per-second counts of the Twitter sample stream (August 2021), space separated

Usage: convert.py worldcup|nasa|twitter INPUT [OUT_DIR]   (stdlib only)
"""

import lzma
import os
import sys
from datetime import datetime, timedelta

DAY = 86_400


def per_5s(per_second, days):
    """Sums of 5 consecutive seconds over the first `days` days."""
    n = days * DAY // 5
    return [sum(per_second[5 * i : 5 * i + 5]) for i in range(n)]


def fill_outages(per_second, min_run=30):
    """Runs of at least `min_run` zero seconds between two non-zero ones are collection outages
    (the Twitter grab loses about 29 minutes at the same time every day): fill them by linear
    interpolation between the 60-s means on each side. Returns the filled list and the runs."""
    v = list(per_second)
    runs = []
    i = 0
    while i < len(v):
        if v[i] != 0:
            i += 1
            continue
        j = i
        while j < len(v) and v[j] == 0:
            j += 1
        if j - i >= min_run and i > 0 and j < len(v):
            before = v[max(0, i - 60) : i]
            after = v[j : j + 60]
            a = sum(before) / len(before)
            b = sum(after) / len(after)
            for k in range(i, j):
                v[k] = round(a + (b - a) * (k - i + 1) / (j - i + 1))
            runs.append((i, j - i))
        i = j
    return v, runs


def write(out_dir, name, interval, counts, comments):
    path = os.path.join(out_dir, f"{name}.counts.xz")
    lines = [f"# {c}" for c in comments]
    lines.append(f"interval_secs {interval}")
    lines.extend(str(c) for c in counts)
    data = ("\n".join(lines) + "\n").encode()
    with lzma.open(path, "wb", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(data)
    print(f"{path}: {len(counts)} bins of {interval} s, {os.path.getsize(path)} bytes")


def worldcup(path, out_dir):
    # 28 days of the tournament (10 June - 12 July 1998), per minute, missing minutes as 0
    start = datetime(1998, 6, 10)
    minutes = 28 * DAY // 60
    counts = [0] * minutes
    with open(path) as f:
        for line in f:
            t, _, c = line.strip().partition(",")
            try:
                at = datetime.strptime(t, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue  # the header
            k = int((at - start) / timedelta(minutes=1))
            if 0 <= k < minutes:
                counts[k] = int(c)
    write(
        out_dir,
        "worldcup98",
        60,
        counts,
        [
            "1998 World Cup web site (www.france98.com), all servers: requests per minute",
            "from 1998-06-10 00:00 for 28 days (log time stamps as recorded)",
            'M. Arlitt and T. Jin, "1998 World Cup Web Site Access Logs", August 1998,',
            "Internet Traffic Archive; see bench/traces/README.md for the copyright and disclaimer",
        ],
    )


def nasa(path, out_dir):
    with open(path) as f:
        per_second = [int(x) for x in f.read().split()]
    write(
        out_dir,
        "nasa95",
        5,
        per_5s(per_second, 28),
        [
            "NASA Kennedy Space Center WWW server: requests per 5 s",
            "from 1995-07-01 00:00:00 (local time, EDT) for 28 days",
            "NASA-HTTP logs, Internet Traffic Archive (freely redistributable)",
        ],
    )


def twitter(path, out_dir):
    with open(path) as f:
        per_second = [int(x) for x in f.read().split()]
    filled, runs = fill_outages(per_second)
    days = len(filled) // DAY
    write(
        out_dir,
        "twitter21",
        5,
        per_5s(filled, days),
        [
            "Twitter sample stream (Archive Team grab, August 2021): tweets and deletions per 5 s",
            f"from the first second of the grab for {days} days",
            f"{len(runs)} collection outages of 30 s or more (about 29 minutes every day) filled",
            "by linear interpolation between the minute before and the minute after",
        ],
    )


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    kind, path = sys.argv[1], sys.argv[2]
    out_dir = sys.argv[3] if len(sys.argv) > 3 else os.environ.get(
        "CITUS_AUTOSCALE_TRACES", "/var/cache/citus_autoscale/traces")
    os.makedirs(out_dir, exist_ok=True)
    {"worldcup": worldcup, "nasa": nasa, "twitter": twitter}[kind](path, out_dir)


if __name__ == "__main__":
    main()
