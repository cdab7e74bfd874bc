"""The table of speed-vs-pytorch.sh: peft4j against PyTorch, same run, from that script's log. Standard library only.

  python3 peft-bench/speed_vs_pytorch_table.py <rows.txt> <results.log>

rows.txt: the script's rows ("id | tokens per op | label | PyTorch side | peft4j side"). results.log lines:
  PY <round> <id> <pytorch|peft4j> <the Python side's line: "median ms <x>", "peak RSS <n> MiB">
  JMH <round> <id> <result.json> <console.txt>
  FAILED <round> <id> ...;  NOTE <what> <time> loadavg <a b c>;  COMMIT <describe>;  SETTINGS ...
A row with no figures on one side shows "—" there and no ratio.
"""
import json
import re
import statistics
import sys

PY_MEDIAN = re.compile(r"median ms\s+([\d.]+)")
PY_RSS = re.compile(r"peak RSS\s+(\d+)\s*MiB")
JMH_BENCHMARK = re.compile(r"^# Benchmark: (\S+)")
JMH_PARAMETERS = re.compile(r"^# Parameters: \((.*)\)")
JMH_RSS = re.compile(r"peak RSS\b.*?:\s*(\d+)\s*MiB")
# a JMH score in its unit -> milliseconds per op
TO_MS = {"s/op": lambda s: s * 1e3, "ms/op": lambda s: s, "us/op": lambda s: s / 1e3, "ns/op": lambda s: s / 1e6,
         "ops/s": lambda s: 1e3 / s, "ops/ms": lambda s: 1 / s, "ops/us": lambda s: 1e-3 / s,
         "ops/ns": lambda s: 1e-6 / s}


def read_rows(path):
    rows = []
    for line in open(path):
        if line.strip():
            f = [x.strip() for x in line.split("|")]
            if len(f) != 5:
                sys.exit(f"{path}: a row needs 5 fields 'id | tokens | label | PyTorch side | peft4j side', "
                         f"found {len(f)}: {line.strip()}")
            rows.append(dict(id=f[0], tokens=int(f[1]), label=f[2], pytorch=f[3], peft4j=f[4]))
    return rows


def params_key(params):
    """JMH's parameters without 'workers', as a sorted tuple: what must be one value per row and worker count."""
    return tuple(sorted((k, v) for k, v in params.items() if k != "workers"))


SAMPLES = []  # (samples, row id, workers) of every SampleTime result: a median of a few samples is only a smoke test


def jmh_figures(row_id, json_path, console_path):
    """{workers or None: (median ms, peak RSS MiB or None)} from one JMH run (one fork per parameter combination)."""
    rss = {}  # (benchmark, parameters) -> MiB, from the forks' own "peak RSS" lines
    bench, params = None, {}
    for line in open(console_path, errors="replace"):
        m = JMH_BENCHMARK.match(line)
        if m:
            bench, params = m.group(1), {}
        m = JMH_PARAMETERS.match(line)
        if m:
            params = dict(kv.split(" = ", 1) for kv in m.group(1).split(", ") if " = " in kv)
        m = JMH_RSS.search(line)
        if m and bench:
            rss[(bench, tuple(sorted(params.items())))] = int(m.group(1))
    out, seen = {}, {}
    for r in json.load(open(json_path)):
        metric, params = r["primaryMetric"], r.get("params", {})
        unit = metric["scoreUnit"]
        if unit not in TO_MS:
            sys.exit(f"{json_path}: {r['benchmark']} has score unit {unit}; expected one of {sorted(TO_MS)}")
        workers = int(params["workers"]) if "workers" in params else None
        score = metric["score"]
        if r["mode"] == "sample":
            score = metric["scorePercentiles"]["50.0"]
            SAMPLES.append((sum(n for fork in metric["rawDataHistogram"] for iteration in fork
                                for _, n in iteration), row_id, workers))
        key = (r["benchmark"], params_key(params))
        if workers in out and seen[workers] != key:
            sys.exit(f"row {row_id}: JMH gave two results for workers={workers}: {seen[workers]} and {key}; "
                     "pin the other parameters (-p name=value) or the benchmark regex in the row")
        seen[workers] = key
        out[workers] = (TO_MS[unit](score), rss.get((r["benchmark"], tuple(sorted(params.items())))))
    return out


def py_figures(line):
    """(median ms, peak RSS MiB or None) from a Python side's line."""
    median, rss = PY_MEDIAN.search(line), PY_RSS.search(line)
    return float(median.group(1)), int(rss.group(1)) if rss else None


def med(xs):
    return statistics.median(xs) if xs else None


def over(a, b):
    """a / b as a ratio, or a dash when either is missing."""
    return "—" if a is None or b is None else f"{a / b:.2f}×"


def ms(x):
    return "—" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def spread(xs, fmt=ms):
    """The median of the rounds, with their range when there are several."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    if fmt(min(xs)) == fmt(max(xs)):
        return fmt(xs[0])
    return f"{fmt(med(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def main(rows_path, log_path):
    rows = read_rows(rows_path)
    pytorch, peft4j = {}, {}  # id -> round -> figures
    notes, failures, commit, settings = [], [], "?", ""
    for line in open(log_path):
        f = line.split()
        if not f:
            continue
        if f[0] == "PY":
            median, rss = py_figures(line)
            side = pytorch if f[3] == "pytorch" else peft4j
            # a Python peft4j side has no workers: its figure goes to the 2-worker column
            side.setdefault(f[2], {})[int(f[1])] = (median, rss) if f[3] == "pytorch" else {None: (median, rss)}
        elif f[0] == "JMH":
            peft4j.setdefault(f[2], {})[int(f[1])] = jmh_figures(f[2], f[3], f[4])
        elif f[0] == "FAILED":
            failures.append(line.strip()[7:])
        elif f[0] == "NOTE":
            notes.append(line.strip()[5:])
        elif f[0] == "COMMIT":
            commit = f[1]
        elif f[0] == "SETTINGS":
            settings = line.strip()[9:]
    rounds = sorted({r for side in (pytorch, peft4j) for runs in side.values() for r in runs})

    print("| configuration | PyTorch median ms | peft4j 1 worker ms | peft4j 2 workers ms | PyTorch tokens/s "
          "| peft4j tokens/s (2 workers) | ratio per round | **ratio** | peak RSS MiB PyTorch "
          "| peak RSS MiB peft4j 1 / 2 workers | peak RSS peft4j / PyTorch, 1 / 2 workers |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    footnote = False
    for row in rows:
        ref = row["pytorch"][1:] if row["pytorch"].startswith("=") else row["id"]
        pt = pytorch.get(ref, {})
        ours = peft4j.get(row["id"], {})
        one = {r: fig[1] for r, fig in ours.items() if 1 in fig}
        # the 2-worker column: workers=2, or a result without a workers parameter
        two = {r: fig[2] if 2 in fig else fig[None] for r, fig in ours.items() if 2 in fig or None in fig}
        no_workers = any(None in fig and 2 not in fig for fig in ours.values())
        footnote |= no_workers
        ratios = [pt[r][0] / two[r][0] for r in rounds if r in pt and r in two]
        pt_ms, two_ms = med([pt[r][0] for r in pt]), med([two[r][0] for r in two])
        tokens = lambda m: "—" if m is None else f"{row['tokens'] * 1000 / m:,.0f}"
        mib = lambda x: f"{x:,.0f}"
        pt_rss = med([pt[r][1] for r in pt if pt[r][1] is not None])
        rss_ratio = lambda side: over(med([fig[1] for fig in side.values() if fig[1] is not None]), pt_rss)
        dagger = " †" if no_workers else ""
        print(f"| {row['label']} | {spread([pt[r][0] for r in pt])} | {spread([one[r][0] for r in one])} "
              f"| {spread([two[r][0] for r in two])}{dagger} | {tokens(pt_ms)} | {tokens(two_ms)} "
              f"| {' / '.join(f'{x:.2f}×' for x in ratios) or '—'} "
              f"| {'**' + format(med(ratios), '.2f') + '×**' if ratios else '—'} "
              f"| {spread([pt[r][1] for r in pt], mib)} "
              f"| {spread([one[r][1] for r in one], mib)} / {spread([two[r][1] for r in two], mib)} "
              f"| {rss_ratio(one)} / {rss_ratio(two)} |")
    print()
    print(f"Same run, {len(rounds)} round(s), alternating (odd rounds PyTorch first, even rounds peft4j first); "
          f"commit {commit}; {settings}. Medians of the rounds' medians, their range in brackets; ratio = "
          "PyTorch ms / peft4j ms (2 workers) = peft4j's tokens/s over PyTorch's. Peak RSS: each process's own "
          "(PyTorch: ru_maxrss; peft4j: the JMH fork's VmHWM); their ratio is of the medians over the rounds.")
    if SAMPLES:
        fewest = min(SAMPLES, key=lambda s: s[0])
        print(f"Fewest JMH samples behind one median: {fewest[0]} ({fewest[1]}, workers {fewest[2]}).")
    if footnote:
        print("† no workers parameter on the peft4j side: its single figure is shown in the 2-worker column.")
    for n in notes:
        print(f"- {n}")
    for n in failures:
        print(f"- FAILED {n}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
