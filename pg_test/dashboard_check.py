#!/usr/bin/env python3
"""Runs every query of the Grafana dashboard (panels, repeated per policy, and annotations) and the
sql_exporter query on a live coordinator, the way Grafana's PostgreSQL data source would: time
macros and variables replaced by real SQL, then checks that each query succeeds and returns the
columns its panel needs. Prints one line per query; exits non-zero on the first failure.

  dashboard_check.py DASHBOARD.json SQL_EXPORTER.yml PORT

Checks, by panel format:
  time_series  a first column "time" (timestamp or epoch number), then an optional text "metric"
               column and numeric value columns; rows sorted by time; at least one row
  table        exactly the columns listed in TABLE_COLUMNS for the panel's title
  annotation   columns time (timestamp), text, tags (text), optional timeend; at least one row
Semantics it also checks are in the scenario that calls it (pg_test/scenarios/12_dashboard.sh),
which reads the JSON this prints to stdout's last line.
"""
import csv
import io
import json
import re
import subprocess
import sys

DASHBOARD, EXPORTER, PORT = sys.argv[1], sys.argv[2], sys.argv[3]

# Grafana's variables and macros, over the last hour, 100 ms buckets (one sample per bucket)
TIME_FROM = "now() - interval '1 hour'"
TIME_TO = "now()"
INTERVAL_MS = 100

# table panels: the columns each one must return (the panel's field names)
TABLE_COLUMNS = {
    "Status": ["mode", "active_workers", "unreachable_workers", "last_sample_at", "operation", "operation_step",
               "operation_node", "last_decision", "last_desired_workers", "paused_until", "standby_available",
               "scale_out_cooldown_left", "scale_in_cooldown_left"],
    "Rebalance progress": ["percent done", "job"],
    "Rebalance job": ["operation_id", "operation", "status", "step", "job_id", "job_state", "tasks_done",
                      "tasks_total", "percent_done", "elapsed", "eta"],
    "Standby pool by state": ["state", "nodes"],
    "Standby nodes": ["node", "state", "added_at", "joined_at", "changed_at"],
    "Operations": ["id", "kind", "status", "step", "requested_by", "node", "job_id", "reason", "error",
                   "started_at", "finished_at", "took"],
    "Events": ["at", "kind", "message"],
}
NUMERIC = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
TIME_TYPES = {"timestamp with time zone", "timestamp without time zone", "double precision", "numeric", "bigint"}


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def psql(sql):
    """Runs sql (one statement per call list); returns stdout. Raises on an SQL error."""
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", PORT,
                        "-U", "postgres", "-d", "postgres", "--csv"], input=sql, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return r.stdout


def expand(sql, variables):
    """Grafana PostgreSQL macros (https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/)."""
    def args(m):
        return [a.strip() for a in m.group(1).split(",")]

    def group(m, alias):
        a = args(m)
        col, iv = a[0], a[1].strip("'")
        secs = interval_secs(iv)
        out = f"floor(extract(epoch from {col})/{secs})*{secs}"
        return out + (' AS "time"' if alias else "")

    sql = sql.replace("$__interval_ms", str(INTERVAL_MS)).replace("$__interval", f"{INTERVAL_MS}ms")
    for name, value in variables.items():
        sql = sql.replace("${" + name + "}", value).replace("$" + name, value)
    sql = re.sub(r"\$__timeGroupAlias\(([^)]*)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^)]*)\)", lambda m: group(m, False), sql)
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)", lambda m: f"{m.group(1).strip()} BETWEEN {TIME_FROM} AND {TIME_TO}", sql)
    sql = re.sub(r"\$__timeFrom\(\)", TIME_FROM, sql)
    sql = re.sub(r"\$__timeTo\(\)", TIME_TO, sql)
    sql = re.sub(r"\$__timeEpoch\(([^)]*)\)", lambda m: f'extract(epoch from {m.group(1).strip()}) AS "time"', sql)
    sql = re.sub(r"\$__time\(([^)]*)\)", lambda m: f'{m.group(1).strip()} AS "time"', sql)
    sql = re.sub(r"\$__unixEpochFilter\(([^)]*)\)",
                 lambda m: f"{m.group(1).strip()} BETWEEN extract(epoch from {TIME_FROM}) AND extract(epoch from {TIME_TO})", sql)
    left = re.findall(r"\$\{?\w+", sql)
    if left:
        raise RuntimeError(f"unexpanded macro or variable {left} in: {sql}")
    return sql


def interval_secs(iv):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", iv)
    if not m:
        raise RuntimeError(f"interval {iv!r}")
    n, u = int(m.group(1)), m.group(2)
    return {"ms": n / 1000, "s": n, "m": n * 60, "h": n * 3600, "d": n * 86400}[u]


def run(sql):
    """Columns (name, type) and rows (lists of strings, '' for NULL) of sql, in one transaction."""
    body = sql.strip().rstrip(";")
    desc = psql(f"BEGIN;\nCREATE TEMP VIEW grafana_q AS\n{body};\n"
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'grafana_q'::regclass AND attnum > 0 ORDER BY attnum;\nROLLBACK;\n")
    cols = [tuple(r) for r in list(csv.reader(io.StringIO(desc)))[1:]]
    out = list(csv.reader(io.StringIO(psql(body + ";\n"))))
    header, rows = out[0], out[1:]
    if header != [c[0] for c in cols]:
        raise RuntimeError(f"columns differ: {header} vs {cols}")
    return cols, rows


def check_time_series(title, cols, rows):
    if not cols or cols[0][0] != "time" or cols[0][1] not in TIME_TYPES:
        raise RuntimeError(f"first column must be time, got {cols}")
    values = cols[1:]
    if values and values[0][0] == "metric":
        if values[0][1] != "text":
            raise RuntimeError(f"metric column must be text: {cols}")
        values = values[1:]
    if not values or any(t not in NUMERIC for _, t in values):
        raise RuntimeError(f"value columns must be numeric: {cols}")
    if not rows:
        raise RuntimeError("no rows: the cluster has samples in the time range")
    times = [float(r[0]) for r in rows] if cols[0][1] != "timestamp with time zone" else [r[0] for r in rows]
    if times != sorted(times):
        raise RuntimeError("rows are not sorted by time")


def main():
    dash = json.load(open(DASHBOARD))
    policies = [r[0] for r in csv.reader(io.StringIO(psql("SELECT name FROM autoscale.policy_config ORDER BY name;")))][1:]
    if not policies:
        fail("no policy on the cluster: the policy panels cannot be checked")
    results = {}
    n = 0
    panels = []
    for p in dash["panels"]:
        panels.extend(p.get("panels", [])) if p.get("type") == "row" else panels.append(p)
    for p in panels:
        title = p["title"]
        repeat = p.get("repeat")
        runs = [(f"{title} [{v}]", {repeat: f"'{v}'"}, v) for v in policies] if repeat else [(title, {}, None)]
        for label, variables, rv in runs:
            for t in p["targets"]:
                sql = expand(t["rawSql"], variables)
                try:
                    cols, rows = run(sql)
                    if t.get("format") == "time_series":
                        check_time_series(label, cols, rows)
                    else:
                        want = TABLE_COLUMNS.get(title)
                        if want is None:
                            raise RuntimeError("table panel without expected columns in TABLE_COLUMNS")
                        if [c[0] for c in cols] != want:
                            raise RuntimeError(f"columns {[c[0] for c in cols]}, expected {want}")
                except RuntimeError as e:
                    fail(f"panel {label!r} query {t['refId']}: {e}")
                n += 1
                print(f"ok: panel {label!r} {t['refId']} ({p['type']}, {t.get('format')}): "
                      f"{len(rows)} rows, columns {', '.join(c[0] for c in cols)}")
                results.setdefault(title, {})[(rv or "") + t["refId"]] = {"columns": [c[0] for c in cols], "rows": rows}
    for a in dash["annotations"]["list"]:
        if a.get("builtIn"):
            continue
        sql = expand(a["target"]["rawSql"], {})
        try:
            cols, rows = run(sql)
            names = [c[0] for c in cols]
            types = dict(cols)
            if names[:1] != ["time"] or types["time"] != "timestamp with time zone":
                raise RuntimeError(f"first column must be time (timestamptz): {cols}")
            if not {"text", "tags"} <= set(names) or types["text"] != "text" or types["tags"] != "text":
                raise RuntimeError(f"text and tags (text) needed: {cols}")
            if set(names) - {"time", "timeend", "text", "tags"}:
                raise RuntimeError(f"unexpected columns: {cols}")
            if not rows:
                raise RuntimeError("no rows")
        except RuntimeError as e:
            fail(f"annotation {a['name']!r}: {e}")
        n += 1
        print(f"ok: annotation {a['name']!r}: {len(rows)} rows, columns {', '.join(names)}")
        results["annotation " + a["name"]] = {"A": {"columns": names, "rows": rows}}
    # the policy variable's own query
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            cols, rows = run(v["query"])
            if [r[0] for r in rows] != policies:
                fail(f"variable {v['name']}: {rows}")
            n += 1
            print(f"ok: variable {v['name']}: {', '.join(r[0] for r in rows)}")

    # the sql_exporter query: its rows, put back together, are exactly the lines of autoscale.metrics()
    import yaml
    cfg = yaml.safe_load(open(EXPORTER))
    metric = cfg["collectors"][0]["metrics"][0]
    # one statement: both calls see the same snapshot and now()
    out = psql("SELECT autoscale.metrics() AS text, (SELECT json_agg(q) FROM (\n"
               + metric["query"].strip().rstrip(";") + "\n) q) AS rows;\n")
    text, rows_json = list(csv.reader(io.StringIO(out)))[1]
    rows = json.loads(rows_json)
    want = sorted(l for l in text.splitlines() if l and not l.startswith("#"))
    # label order in metrics() is the order it was pushed: compare as sets of (name, label set, value)
    def key(line):
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        return (m.group(1), frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")), float(m.group(3)))
    # order by name, then the sorted labels, then the value (a frozenset's repr depends on its
    # insertion order, so it cannot be the sort key)
    def order(k):
        return (k[0], sorted(k[1]), k[2])
    want_keys = sorted(map(key, want), key=order)
    got_keys = sorted(((r["family"], frozenset((k, r[k]) for k in metric["key_labels"][1:] if r[k] != ""),
                        float(r["value"])) for r in rows), key=order)
    if want_keys != got_keys:
        fail(f"sql_exporter rows differ from autoscale.metrics():\n want {want_keys}\n got  {got_keys}")
    n += 1
    print(f"ok: sql_exporter query: {len(rows)} rows, the same series and values as autoscale.metrics()")
    print(f"dashboard: {n} queries ran")
    print(json.dumps({k: {kk: vv for kk, vv in v.items()} for k, v in results.items()}))


main()
