#!/usr/bin/python3
"""Turns the JSON lines of tests/bench/run.sh into the results table (printed,
and written as results.md) and the plot (throughput_p99.png)."""

import argparse
import collections
import datetime
import json
import os
import platform
import statistics
import subprocess

# The baseline each authority scenario is compared with: the same serving
# threads and transport settings (baseline_server.cc --api async), doing the
# nearest thing to the scenario with no logic: an empty call for signed
# issues (no store access), one Redis GET for everything that reaches Redis.
MATCHING = {
    "issue_signed": "empty",
    "issue_onetime": "get",
    "validate_onetime": "get",
    "validate_onetime_tx": "get",
    "validate_onetime_csr": "get",
    "validate_signed": "get",
    "validate_signed_csr": "get",
    "mix": "get",
}
DESCRIPTION = {
    "empty": "empty unary call",
    "get": "unary call + one Redis GET",
    "issue_signed": "IssueChallenge, signed",
    "issue_onetime": "IssueChallenge, one-time",
    "validate_onetime": "Validate one-time",
    "validate_onetime_tx": "Validate one-time + transaction id",
    "validate_onetime_csr": "Validate one-time + CSR (EC P-256)",
    "validate_signed": "Validate signed",
    "validate_signed_csr": "Validate signed + CSR (EC P-256)",
    "mix": "mix: issue+validate, one-time and signed",
}
SERVER = {
    "authority": "authority",
    # SCEPCA_BENCH_BEFORE_LABEL names the other build (run.sh).
    "before": "authority before ("
    + os.environ.get("SCEPCA_BENCH_BEFORE_LABEL", "other build")
    + ")",
    "base_async": "baseline, authority's threading",
    "base_callback": "baseline, callback + pipelined Redis",
    "base_sync": "baseline, gRPC sync server",
}
TARGETS = [
    # scenario, minimum throughput ratio, maximum p99 ratio
    ("validate_onetime", 0.80, 1.5),
    ("issue_signed", 0.85, 1.5),
]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def summarize(rows):
    """Median figures per (server, scenario) over the repetitions."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["server"], r["scenario"])].append(r)
    out = {}
    for key, rs in groups.items():
        cpu = collections.defaultdict(list)
        for r in rs:
            for name, value in r.get("cpu_us_per_call", {}).items():
                cpu[name].append(value)
        out[key] = {
            "n": len(rs),
            "throughput": median([r["throughput"] for r in rs]),
            "throughputs": [r["throughput"] for r in rs],
            "p50": median([r["p50_us"] for r in rs]),
            "p99": median([r["p99_us"] for r in rs]),
            "p999": median([r["p999_us"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "refused": sum(r["refused"] for r in rs),
            "cpu": {k: median(v) for k, v in cpu.items()},
        }
    return out


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0
    return (f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
            f"load average {load:.1f} at the end")


def versions():
    out = []
    for pkg in ("libgrpc++1.51", "redis-server", "libhiredis0.14"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                               capture_output=True, text=True).stdout
            out.append(f"{pkg} {v}")
        except OSError:
            pass
    return ", ".join(out)


def c64_table(rows, lines, verdicts):
    c64 = summarize([r for r in rows if r.get("phase") == "c64"])
    if not c64:
        return
    baseline = {s: c64.get(("base_async", s)) for s in ("empty", "get")}
    limit = {s: c64.get(("base_callback", s)) for s in ("empty", "get")}
    lines.append("### Concurrency 64 (4 channels)\n")
    lines.append(
        "Medians of the repetitions. *× baseline*: throughput ÷ the matching "
        "baseline's (same serving threads and settings; `empty` for signed "
        "issues, `get` otherwise), measured in the same run. *× limit*: ÷ the "
        "callback-API baseline with a pipelined Redis connection. *p99 ×*: "
        "p99 ÷ the matching baseline's p99. *CPU µs/call*: CPU time of the "
        "server, redis-server and the load generator per completed call "
        "(less disturbed by other load on the machine than throughput); *× "
        "baseline by CPU*: the baseline's CPU µs/call ÷ this one's, the "
        "throughput ratio a machine with nothing else running would show.\n")
    lines.append("| server | scenario | calls/s | p50 µs | p99 µs | p99.9 µs "
                 "| CPU µs/call server+redis+client | × baseline | × baseline "
                 "by CPU | × limit | p99 × | errors |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = [("base_async", "empty"), ("base_async", "get"),
             ("base_callback", "empty"), ("base_callback", "get"),
             ("base_sync", "empty"), ("base_sync", "get")]
    for server in ("authority", "before"):
        order += [(server, s) for s in MATCHING]
    for key in order:
        s = c64.get(key)
        if s is None:
            continue
        server, scenario = key
        cpu = s["cpu"]
        cpu_text = "{} = {}+{}+{}".format(
            fmt(sum(cpu.values()), 0), fmt(cpu.get("server"), 0),
            fmt(cpu.get("redis"), 0), fmt(cpu.get("client"), 0)) if cpu else "–"
        m = MATCHING.get(scenario, scenario)
        base = baseline.get(m)
        lim = limit.get(m)
        r = ratio(s["throughput"], base and base["throughput"])
        rl = ratio(s["throughput"], lim and lim["throughput"])
        rp = ratio(s["p99"], base and base["p99"])
        rc = ratio(sum(base["cpu"].values()) if base and base["cpu"] else None,
                   sum(cpu.values()) if cpu else None)
        lines.append(
            f"| {SERVER.get(server, server)} | {DESCRIPTION.get(scenario, scenario)} "
            f"| {fmt(s['throughput'])} | {fmt(s['p50'])} | {fmt(s['p99'])} "
            f"| {fmt(s['p999'])} | {cpu_text} "
            f"| {fmt(r, 2) if server in ('authority', 'before') else '–'} "
            f"| {fmt(rc, 2) if server in ('authority', 'before') else '–'} "
            f"| {fmt(rl, 2)} "
            f"| {fmt(rp, 2) if server in ('authority', 'before') else '–'} "
            f"| {s['errors']}{'' if not s['refused'] else ' (+%d refused)' % s['refused']} |")
    lines.append("")
    lines.append("### Targets (concurrency 64)\n")
    lines.append("| target | measured | met? |")
    lines.append("|---|---|---|")
    for scenario, min_ratio, max_p99 in TARGETS:
        s = c64.get(("authority", scenario))
        base = baseline.get(MATCHING[scenario])
        if s is None or base is None:
            continue
        r = ratio(s["throughput"], base["throughput"])
        rp = ratio(s["p99"], base["p99"])
        ok = r is not None and r >= min_ratio
        okp = rp is not None and rp <= max_p99
        name = DESCRIPTION[scenario]
        bname = DESCRIPTION[MATCHING[scenario]]
        rc = ratio(sum(base["cpu"].values()) if base["cpu"] else None,
                   sum(s["cpu"].values()) if s["cpu"] else None)
        okc = rc is not None and rc >= min_ratio
        lines.append(f"| {name} ≥ {min_ratio:.0%} of *{bname}* | "
                     f"{fmt(s['throughput'])} ÷ {fmt(base['throughput'])} "
                     f"calls/s = {r:.0%}; by CPU µs/call "
                     f"{fmt(sum(base['cpu'].values()), 1)} ÷ "
                     f"{fmt(sum(s['cpu'].values()), 1)} = "
                     f"{'–' if rc is None else format(rc, '.0%')} | "
                     f"{'yes' if ok and okc else ('**no**' if not ok and not okc else 'by throughput ' + ('yes' if ok else 'no') + ', by CPU ' + ('yes' if okc else 'no'))} |")
        lines.append(f"| {name}: p99 ≤ {max_p99}× *{bname}* p99 | "
                     f"{fmt(s['p99'])} ÷ {fmt(base['p99'])} µs = {rp:.2f}× | "
                     f"{'yes' if okp else '**no**'} |")
        verdicts.append((scenario, r, ok, rp, okp))
    lines.append("")


def sweep_table(rows, lines):
    sweep = [r for r in rows if r.get("phase") == "sweep"]
    if not sweep:
        return {}
    curves = collections.OrderedDict()
    for r in sweep:
        curves.setdefault((r["server"], r["scenario"]), {})[r["concurrency"]] = r
    levels = sorted({r["concurrency"] for r in sweep})
    lines.append("### Concurrency sweep (one run per point)\n")
    lines.append("| curve | " + " | ".join(f"c={c}" for c in levels) + " |")
    lines.append("|---|" + "---:|" * len(levels))
    for (server, scenario), points in curves.items():
        cells = []
        for c in levels:
            p = points.get(c)
            cells.append("–" if p is None else
                         f"{fmt(p['throughput'])}/s, p99 {fmt(p['p99_us'] / 1000, 1)} ms")
        lines.append(f"| {SERVER.get(server, server)}: "
                     f"{DESCRIPTION.get(scenario, scenario)} | " +
                     " | ".join(cells) + " |")
    lines.append("")
    return curves


def redis_table(rows, commandstats, lines):
    rb = [r for r in rows if r.get("phase") == "redis"]
    if rb:
        lines.append("### Redis alone (redis-benchmark, 64 clients, no "
                     "pipelining)\n")
        lines.append("| command | requests/s |")
        lines.append("|---|---:|")
        for r in rb:
            lines.append(f"| {r['command']} | {fmt(r['requests_per_second'])} |")
        lines.append("")
    if os.path.exists(commandstats):
        stats = []
        with open(commandstats) as f:
            for line in f:
                if line.startswith("cmdstat_"):
                    name, rest = line.strip().split(":", 1)
                    fields = dict(kv.split("=") for kv in rest.split(","))
                    stats.append((name[len("cmdstat_"):], int(fields["calls"]),
                                  float(fields["usec_per_call"])))
        keep = [s for s in stats if s[0] in
                ("evalsha", "eval", "hgetall", "hmget", "get", "set", "hget")]
        if keep:
            lines.append("Redis's own time per command during the "
                         "concurrency-64 runs (`INFO commandstats`; EVALSHA "
                         "includes the commands its script runs):\n")
            lines.append("| command | calls | µs per call |")
            lines.append("|---|---:|---:|")
            for name, calls, usec in sorted(keep, key=lambda s: -s[1]):
                lines.append(f"| {name} | {fmt(calls)} | {usec:.2f} |")
            lines.append("")


def profile_table(rows, lines):
    prof = [r for r in rows if r.get("phase") == "profile"]
    if not prof:
        return
    lines.append("### Profile of the server at concurrency 64 (perf)\n")
    lines.append("| server | scenario | calls/s | syscalls/call | context "
                 "switches/call | CPU µs/call server+redis+client | server "
                 "CPU by library (top) |")
    lines.append("|---|---|---:|---:|---:|---:|---|")
    for r in prof:
        cpu = r.get("cpu_us_per_call", {})
        libs = ", ".join(f"{k} {v}" for k, v in
                         list(r.get("server_cpu_by_library", {}).items())[:6])
        lines.append(
            f"| {SERVER.get(r['server'], r['server'])} | "
            f"{DESCRIPTION.get(r['scenario'], r['scenario'])} | "
            f"{fmt(r['throughput'])} | {r['syscalls_per_call']:.1f} | "
            f"{r['context_switches_per_call']:.1f} | "
            f"{fmt(sum(cpu.values()))} = {fmt(cpu.get('server'))}+"
            f"{fmt(cpu.get('redis'))}+{fmt(cpu.get('client'))} | "
            f"{libs or '–'} |")
    lines.append("")


def growth_table(rows, lines):
    mem = [r for r in rows if r.get("phase") == "growth_memory"]
    val = [r for r in rows if r.get("phase") == "growth"]
    fill = [r for r in rows if r.get("phase") == "growth_fill"]
    if not (mem or val):
        return
    lines.append("### Growth\n")
    if mem:
        lines.append("| Redis memory per outstanding one-time challenge | "
                     "challenges | bytes each |")
        lines.append("|---|---:|---:|")
        for r in mem:
            how = ("clones of one challenge written by the store, pipelined "
                   "(record + device index + user index, same types, sizes, "
                   "TTLs)" if r["method"] == "clone" else
                   "ChallengeAuthority::Issue on the Redis store (no gRPC), "
                   "8 threads")
            lines.append(f"| {how} | {fmt(r['count'])} | "
                         f"{fmt(r['bytes_per_challenge'])} |")
        for r in fill:
            if "seconds" in r:
                lines.append("")
                lines.append(f"Fill: {r.get('method')}: "
                             f"{json.dumps({k: v for k, v in r.items() if k not in ('phase', 'method')})}")
        lines.append("")
    if val:
        lines.append("| Validate (one-time, concurrency 4) | calls | p50 µs "
                     "| p99 µs |")
        lines.append("|---|---:|---:|---:|")
        for r in val:
            lines.append(f"| {fmt(r['outstanding'])} outstanding | "
                         f"{fmt(r['calls'])} | {fmt(r['p50_us'])} | "
                         f"{fmt(r['p99_us'])} |")
        lines.append("")


def micro_table(path, lines):
    if not os.path.exists(path):
        return
    with open(path) as f:
        data = json.load(f)
    lines.append("### Micro-benchmarks (one thread, no gRPC; Redis ops are "
                 "one blocking round trip each)\n")
    lines.append("| benchmark | CPU µs | wall µs |")
    lines.append("|---|---:|---:|")
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            lines.append(f"| {b['name']} | error: {b.get('error_message')} | |")
            continue
        unit = {"ns": 1e-3, "us": 1, "ms": 1e3}.get(b.get("time_unit", "ns"), 1e-3)
        label = f" ({b['label']})" if b.get("label") else ""
        lines.append(f"| {b['name']}{label} | {b['cpu_time'] * unit:.2f} "
                     f"| {b['real_time'] * unit:.2f} |")
    lines.append("")


def plot(curves, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for (server, scenario), points in curves.items():
        cs = sorted(points)
        label = f"{SERVER.get(server, server)}: {DESCRIPTION.get(scenario, scenario)}"
        style = "-o" if server == "authority" else "--s"
        ax1.plot(cs, [points[c]["throughput"] for c in cs], style, label=label)
        ax2.plot(cs, [points[c]["p99_us"] / 1000 for c in cs], style,
                 label=label)
    levels = sorted({c for points in curves.values() for c in points})
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels)
        ax.set_xticklabels([str(c) for c in levels])
        ax.set_xlabel("concurrency (calls in flight)")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("calls/s")
    ax1.set_title("Throughput")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 latency (ms)")
    ax2.set_title("p99 latency")
    ax1.legend(fontsize=7, loc="upper left")
    fig.suptitle("SCEP challenge authority vs baselines, 2-core machine shared "
                 "by client, server and Redis")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--micro")
    parser.add_argument("--out", required=True)
    parser.add_argument("--elapsed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=0)
    parser.add_argument("--seconds", default="")
    args = parser.parse_args()
    rows = load(args.results)
    lines = []
    lines.append(f"## Results of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    lines.append(f"Machine: {machine()}. {versions()}. Client, server and "
                 f"redis-server on the same machine; Redis over loopback TCP, "
                 f"no persistence. {args.reps} repetitions of "
                 f"{args.seconds} s per point at concurrency 64; "
                 f"run.sh took {args.elapsed} s after the build.\n")
    verdicts = []
    c64_table(rows, lines, verdicts)
    curves = sweep_table(rows, lines)
    profile_table(rows, lines)
    redis_table(rows, os.path.join(args.out, "redis_commandstats.txt"), lines)
    growth_table(rows, lines)
    if args.micro:
        micro_table(args.micro, lines)
    text = "\n".join(lines)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")
    if curves:
        plot(curves, os.path.join(args.out, "throughput_p99.png"))
    print(text)


if __name__ == "__main__":
    main()
