"""Turns scripts/power-tune's results into the memory-size section of docs/performance.md (between
its markers; scripts/bench keeps it) and docs/power-tune.svg (matplotlib).
Usage: power-tune-report.py RESULTS_JSON DOCS_DIR [THE RUN'S OPTIONS...]"""
import datetime
import json
import os
import platform
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("svg")
matplotlib.rcParams["svg.hashsalt"] = "power-tune"  # the same results draw the same file
import matplotlib.pyplot as plt  # noqa: E402

res = json.load(open(sys.argv[1]))
# When the results were written, not when this report is: it may be redrawn from old results.
measured = datetime.datetime.fromtimestamp(os.path.getmtime(sys.argv[1]), datetime.timezone.utc)
docs = sys.argv[2]

# Lambda's arm64 on-demand prices in US East (N. Virginia), the first tier (7.5 billion GB-s a
# month): $0.0000133334 per GB-second and $0.20 per million requests. AWS's pricing page
# (aws.amazon.com/lambda/pricing) renders its rate table in the browser; the figures are as
# cloudchipr's "AWS Lambda Pricing Breakdown" (2024) and artillery 2.0.28's prices.js (arm64 base
# 1333340e-11 $/GB-s) transcribe them, and the page's own text gives $0.20 per million requests
# (read 2026-09-20 by api-evangelist/aws-lambda's pricing harvest). Other regions cost more (e.g.
# ap-east-1 $0.0000183 per GB-s, artillery's table). The page also says duration includes the
# init code: a cold start bills its init too.
PRICE_GB_S = 0.0000133334
PRICE_REQUEST = 0.20 / 1e6
PRICE_NOTE = ("Lambda arm64 in us-east-1, first tier: $0.0000133334 per GB-second and $0.20 per million "
              "requests (AWS's pricing page, as transcribed in 2024 by cloudchipr's Lambda pricing guide and "
              "by artillery 2.0.28's price table; the request price as the page read on 2026-09-20)")
# The options scripts/power-tune was given, which it hands over after the two paths.
RUN_ARGS = sys.argv[3:]
LIMIT_MS = 100  # the rule: the cheapest size whose warm p99 stays under this

sizes = res["sizes"]
mbs = [s["memory_mb"] for s in sizes]


def op_names():
    names = []
    for s in sizes:
        for o in s["operations"]:
            if o["operation"] not in names:
                names.append(o["operation"])
    return names


def op(s, name):
    return next((o for o in s["operations"] if o["operation"] == name), None)


def cost_per_million(mb, billed_ms):
    """Dollars for a million invocations each billed `billed_ms` (mean, each rounded up to 1 ms)."""
    return 1e6 * (PRICE_REQUEST + billed_ms / 1000 * mb / 1024 * PRICE_GB_S)


def ref_hash(s, key):
    """The probe's median for `key` in the reference group (no quota), by turns with the capped."""
    return s["probe"]["reference"][key]["median"]


names = op_names()
steady = [n for n in names if n.startswith("registration") or "argon2id" in n]
chosen = next((s for s in sizes if all(op(s, n) and op(s, n)["ms"]["p99"] < LIMIT_MS for n in steady)), None)

lines = [
    "<!-- power-tune: begin -->",
    "",
    "## Memory size (scripts/power-tune)",
    "",
    f"Measured {measured:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
    f"{platform.system()} {platform.release()}, by `scripts/power-tune` (the harness is `benches/power_tune.rs`).",
    "Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB. Here the x86_64",
    "release bootstrap runs under the same Lambda Runtime API harness in a cgroup whose CPU quota is",
    f"MemorySize / 1769 of one CPU per {res['period_us'] / 1000:g} ms period ({res['hierarchy'].split('(')[0]} `cpu` controller), against",
    "the local Redis and moto; the harness and the servers are not capped. The 20 ms period is what",
    "Lambda's throttling was observed to use (pwrdrvr/lambda-dispatch#246: a function that spends its",
    "share early in a 20 ms slice is paused until the slice ends). Each warm invocation and each capped",
    f"cold start begins after {res['gap_ms']} ms idle, with the period's quota unspent, as an instance between",
    "requests; a saturated instance is slower still, and is what more instances are for.",
    "",
    "**Init at full CPU or capped.** AWS runs an on-demand function's init with a full vCPU, unthrottled,",
    "for up to 10 s, and a provisioned-concurrency one at its memory's share (Serverless Land, \"Effectively",
    "running Java on Serverless: utilize the initialization phase\", by AWS's Dhiraj Mahapatro). Both are",
    "measured: *burst* joins the group at the first `/next` (on-demand), *capped* joins it before exec.",
    "The first invocation is capped in both.",
    "",
    "### The emulation, checked",
    "",
    "A probe process in each group spins for a second (CPU time over wall time is the share it got), then",
    "hashes with the deployed argon2id parameters, moving itself by turns between that group and a",
    "reference group without a quota: 20 rounds, each one hash alone (after two idle periods: what a",
    "request after a pause meets) and three back to back, in each group. The ratio is the capped median",
    "to the reference's, both from the same process, working memory and minutes (hash times here move",
    "by ±20% from one process to the next on a quiet machine).",
    "",
    "| memory | share asked | share measured (spin) | argon2 alone | ratio | back to back | ratio | expected ratio | periods throttled |",
    "|---|---|---|---|---|---|---|---|---|",
]
for s in sizes:
    p = s["probe"]
    exp = 1 / min(1, s["cpu_share"])
    a_ref, b_ref = ref_hash(s, "hash_alone_ms"), ref_hash(s, "hash_back_to_back_ms")
    a, b = p["hash_alone_ms"]["median"], p["hash_back_to_back_ms"]["median"]
    share_exp = min(s["cpu_share"], p["threads"])
    lines.append(
        f"| {s['memory_mb']} MB | {share_exp:.3f} ({p['threads']} thread{'s' if p['threads'] > 1 else ''}) | {p['cpu_share']:.3f} | "
        f"{a:.1f} ms | {a / a_ref:.2f}× | {b:.1f} ms | {b / b_ref:.2f}× | {exp:.2f}× | {s.get('nr_throttled')} |")
by = {s["memory_mb"]: s for s in sizes}
check = []
if 1769 in by:
    s = by[1769]
    r = s["probe"]["hash_back_to_back_ms"]["median"] / ref_hash(s, "hash_back_to_back_ms")
    check.append(f"at 1,769 MB the hash took {r:.2f}× its time with no quota ({(r - 1) * 100:+.0f}%; the issue asks for "
                 f"within 10%: {'met' if abs(r - 1) <= 0.10 else '**not met**'})")
if 512 in by:
    s = by[512]
    r = s["probe"]["hash_back_to_back_ms"]["median"] / ref_hash(s, "hash_back_to_back_ms")
    ra = s["probe"]["hash_alone_ms"]["median"] / ref_hash(s, "hash_alone_ms")
    check.append(f"at 512 MB {r:.2f}× back to back against 1769/512 = 3.46× expected ({(r / 3.455 - 1) * 100:+.0f}%), "
                 f"and {ra:.2f}× for a hash alone after a pause: an 11-13 ms hash fits in two or three 20 ms periods, "
                 "and the first one starts with its whole quota, so a lone hash is paused less than its share says")
if check:
    lines += ["", "Back to back, " + "; ".join(check) + "."]
lines += [
    "",
    "### Cold starts at each size",
    "",
    f"Medians of {res['cold']} each, the function and the hello-world floor (`benches/hello`) in turn.",
    "",
    "| memory | init, burst | floor | ratio | init, capped | floor | ratio | first invocation (burst) | first − warm registration | peak RSS |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
for s in sizes:
    lines.append(
        f"| {s['memory_mb']} MB | {s['init_burst_ms']['median']:.2f} ms | {s['hello_init_burst_ms']['median']:.2f} ms | "
        f"{s['init_ratio_burst']:.2f}× | {s['init_capped_ms']['median']:.2f} ms | {s['hello_init_capped_ms']['median']:.2f} ms | "
        f"{s['init_ratio_capped']:.2f}× | {s['first_burst_ms']['median']:.1f} ms | {s['first_minus_warm_registration_ms']:+.1f} ms | "
        f"{s['peak_rss_mib']:.0f} MiB |")
tls = res.get("tls_stores")
if sizes and "init_before_burst_ms" in sizes[0]:
    lines += [
        "",
        "### DynamoDB's connection opened at init (issue 22)",
        "",
        ("Both stores over TLS, as in AWS: the function reaches moto through scripts/tls-front.py and Redis on "
         "a TLS port, with certificates (RSA 2048: leaf, intermediate, root) from a test CA made for the run; "
         "the bootstrap is the release build with the `test-ca` feature, which trusts that CA."
         if tls else "The stores over plain TCP in this run (no TLS)."),
        "*Before* is the same build told not to open DynamoDB's connection at init "
        "(`IHOME_BENCH_NO_PRECONNECT=1`), *after* as shipped; cold-started in turn, burst init,",
        f"medians of {res['cold']}. First − warm is against the warm registration's median at that size.",
        "",
        "| memory | init before | init after | first invocation before | after | first − warm before | after |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in sizes:
        lines.append(
            f"| {s['memory_mb']} MB | {s['init_before_burst_ms']['median']:.2f} ms | {s['init_burst_ms']['median']:.2f} ms | "
            f"{s['first_before_burst_ms']['median']:.1f} ms | {s['first_burst_ms']['median']:.1f} ms | "
            f"{s['first_before_minus_warm_registration_ms']:+.1f} ms | {s['first_minus_warm_registration_ms']:+.1f} ms |")
    if sizes[0]["probe"].get("connections"):
        lines += [
            "",
            "What opening a connection costs at each size, measured by the probe in the capped group (and the",
            "reference group, full CPU) by turns, after two idle periods: DynamoDB, a new client's first",
            "GetItem minus its second (TCP, the SDK's first-call work, and over the front the TLS handshake),",
            "plain to moto and over TLS, so the difference is the handshake's own; Redis, a new connection",
            "(TCP, TLS, the client's HELLO) over TLS and plain. *First in the process* is a new probe",
            "process's first connection of each kind (in the capped group, before the reference's): it also",
            "sets up the TLS stack (aws-lc, the roots, rustls's configuration), as a new instance's first",
            "connection does. The others are medians of the 20 rounds after.",
            "",
            "| memory | DynamoDB over TLS, first in the process | DynamoDB new connection, TLS | plain | TLS handshake's own | Redis connect TLS, first in the process | Redis connect, TLS | plain |",
            "|---|---|---|---|---|---|---|---|",
        ]
        def conn_row(label, c, group):
            d_tls, d_plain = c["dynamodb_tls"][group]["median"], c["dynamodb_plain"][group]["median"]
            r_tls, r_plain = c["redis_tls"][group]["median"], c["redis_plain"][group]["median"]
            first = lambda k: (f"{c[k][group + '_first_ms']:.2f} ms" if group + "_first_ms" in c[k] else "—")
            return (f"| {label} | {first('dynamodb_tls')} | {d_tls:.2f} ms | {d_plain:.2f} ms | {d_tls - d_plain:.2f} ms | "
                    f"{first('redis_tls')} | {r_tls:.2f} ms | {r_plain:.2f} ms |")
        for s in sizes:
            lines.append(conn_row(f"{s['memory_mb']} MB", s["probe"]["connections"], "capped"))
        lines.append(conn_row("no quota (reference, at 1,769 MB's turn)" if 1769 in by else "no quota (reference)",
                              (by.get(1769) or sizes[-1])["probe"]["connections"], "reference"))
    if 512 in by:
        s = by[512]
        after = s["first_minus_warm_registration_ms"]
        lines += [
            "",
            f"At 512 MB (the template's default) the first registration after a cold start took {after:+.1f} ms "
            f"against a warm one with the connection opened at init (issue 22 asks ≤ +5 ms: "
            f"{'met' if after <= 5 else '**not met**'}), {s['first_before_minus_warm_registration_ms']:+.1f} ms without; "
            f"init {s['init_burst_ms']['median']:.2f} ms against {s['init_before_burst_ms']['median']:.2f} ms (burst, i.e. a full "
            f"core; issue 22's budget ≤ 15 ms: {'met' if s['init_burst_ms']['median'] <= 15 else '**not met**'}). "
            f"Both move with the machine: the first invocations ranged {s['first_burst_ms']['min']:.1f}-"
            f"{s['first_burst_ms']['max']:.1f} ms, so a median of {s['first_burst_ms']['n']} is good to ten-odd ms at this size, and a full "
            f"core's speed changes between runs on a shared machine (here the hash with no quota took "
            f"{ref_hash(s, 'hash_alone_ms'):.1f} ms at this size's turn; the same hash's floor and init at a full core, "
            "measured by scripts/bench in its own run, are at the top of this file).",
        ]
lines += [
    "",
    "### Warm invocations and their cost",
    "",
    "Latency is the invocation's duration as Lambda bills it (event handed over to answer arrived), p50 / p99.",
    f"Cost is per million invocations: {PRICE_NOTE}; each invocation billed its duration",
    "rounded up to the millisecond (the mean of those over the samples), plus the request.",
    "",
    "| operation | " + " | ".join(f"{m} MB" for m in mbs) + " |",
    "|---|" + "---|" * len(mbs),
]
def per_operation(cell):
    """A table row per operation, a cell per size (— where the operation was not measured)."""
    return [f"| {n} | " + " | ".join(cell(s, op(s, n)) if op(s, n) else "—" for s in sizes) + " |"
            for n in names]


lines += per_operation(lambda s, o: f"{o['ms']['median']:.1f} / {o['ms']['p99']:.1f} ms (n={o['ms']['n']})")
lines += ["", "| $ per million | " + " | ".join(f"{m} MB" for m in mbs) + " |", "|---|" + "---|" * len(mbs)]
lines += per_operation(lambda s, o: f"${cost_per_million(s['memory_mb'], o['billed_ms_mean']):.2f}")
cells = [f"${cost_per_million(s['memory_mb'], s['init_burst_ms']['median'] + s['first_burst_ms']['median']) - 1e6 * PRICE_REQUEST:.2f}"
         for s in sizes]
lines.append("| a cold start's init and first invocation, beyond the request (burst init) | " + " | ".join(cells) + " |")
if res.get("left_out"):
    lines += ["", "Left out of this run:"]
    lines += [f"- {o['operation']}: {o['why']}." for o in res["left_out"]]
lines += [
    "",
    "![latency and cost against memory size](power-tune.svg)",
    "",
    "### The choice",
    "",
    f"Rule: **the cheapest size at which the steady operations (a registration and a login with our",
    f"argon2id hash) stay under {LIMIT_MS} ms at p99, warm.** Below 1,769 MB the hash is CPU-bound, so its",
    "GB-seconds (and its cost) hardly change with memory: what memory buys is latency, and the I/O of a",
    "request costs more the more memory waits on it. So the cost is flat or rising while latency falls,",
    "and the first size that meets the latency bound is the one to pay for. Logins against a werkzeug",
    "hash are one per imported user (the hash is upgraded to ours on success), so their latency is not",
    "the rule's, but their cost is in the table.",
    "",
]
if chosen:
    lines.append(f"This run chose **{chosen['memory_mb']} MB**: " + ", ".join(
        f"{n} p99 {op(chosen, n)['ms']['p99']:.1f} ms" for n in steady) + ".")
else:
    lines.append(f"No size met the rule in this run (the steady operations' p99 stayed above {LIMIT_MS} ms).")
if 3008 in by and 1769 in by:
    r3, r1 = op(by[3008], "registration"), op(by[1769], "registration")
    if r3 and r1:
        lines += [
            "",
            f"3,008 MB is 1.7 vCPUs; a registration took {r3['ms']['median']:.1f} ms there against {r1['ms']['median']:.1f} ms at "
            "1,769 MB. The function serves one request at a time and its CPU work (the hash) runs on one",
            "thread, so a second vCPU has nothing to do: above 1,769 MB memory buys no latency, only cost.",
        ]
lines += [
    "",
    "Command: `scripts/power-tune` (as root; options `--sizes`, `--cold`, `--warm`, `--warm-seconds`,",
    "`--period-us`, `--gap-ms` go to the harness). This run: "
    f"`{' '.join(['scripts/power-tune'] + RUN_ARGS)}`.",
    "",
    "<!-- power-tune: end -->",
]
section = "\n".join(lines)

path = os.path.join(docs, "performance.md")
doc = open(path).read() if os.path.exists(path) else "# Performance\n"
BEGIN, END = "<!-- power-tune: begin -->", "<!-- power-tune: end -->"
if BEGIN in doc and END in doc:
    doc = doc[:doc.index(BEGIN)] + section + doc[doc.index(END) + len(END):]
elif "## Caveats" in doc:
    doc = doc.replace("## Caveats", section + "\n\n## Caveats", 1)
else:
    doc = doc.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(doc)

# The plot: warm p50 (solid) and p99 (dotted) latency, and cost per million, against memory.
fig, (lat, cost) = plt.subplots(1, 2, figsize=(12, 6), constrained_layout=True)
for i, n in enumerate(names):
    xs = [s["memory_mb"] for s in sizes if op(s, n)]
    color = f"C{i}"
    lat.plot(xs, [op(s, n)["ms"]["median"] for s in sizes if op(s, n)], "o-", color=color, label=n)
    lat.plot(xs, [op(s, n)["ms"]["p99"] for s in sizes if op(s, n)], ":", color=color)
    cost.plot(xs, [cost_per_million(s["memory_mb"], op(s, n)["billed_ms_mean"]) for s in sizes if op(s, n)],
              "o-", color=color, label=n)
lat.axhline(LIMIT_MS, color="grey", lw=0.8, ls="--")
for ax, title, unit in ((lat, "Warm latency (p50 solid, p99 dotted)", "ms"),
                        (cost, "Cost per million invocations (arm64, us-east-1)", "$")):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(mbs, [str(m) for m in mbs])
    ax.set_xlabel("MemorySize (MB)")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if chosen:
        ax.axvline(chosen["memory_mb"], color="black", lw=0.8)
dollars = matplotlib.ticker.FuncFormatter(lambda v, _: f"${v:.2f}")
cost.yaxis.set_major_formatter(dollars)
cost.yaxis.set_minor_formatter(dollars)
# Below both plots, where it hides no line.
fig.legend(*lat.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
fig.savefig(os.path.join(docs, "power-tune.svg"), metadata={"Date": None})
print(section)
