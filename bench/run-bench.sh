#!/bin/bash
# The login-storm benchmark: N clients (100, 500, 1000) each ask
# cloudapp-ticketd for the ticket of a distinct user at once, against the
# App Streaming emulator with a task that finishes at once and with one
# that takes 3 s.  The same work is then done by the official Alibaba
# Cloud Node.js SDK against the same emulator, and the two are compared.
# Run as root from the repository; it needs node and npm, and installs the
# SDK into bench/node_modules.  The emulator listens on 127.0.0.1 only.
#
# Usage: bench/run-bench.sh [COUNT...]    (default: 100 500 1000)
# Environment: EMULATOR_WORKERS, the emulator's processes (default 4: on
# the 2-core machine of docs/benchmarks.md that spent 0.7 ms of emulator
# CPU per request, against 0.9 ms with 2 and 1.3 ms with 1);
# EMULATOR_NICE, the emulator's nice value (default 19); TMPDIR, the
# parent of the scratch folder (default /dev/shm).
# Writes the report to stdout and to bench/last-run.md.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
counts=${*:-100 500 1000}
EMULATOR_WORKERS=${EMULATOR_WORKERS:-4}
# The emulator replaces the cloud, whose CPU is not this machine's.
# At nice 19 it runs when the daemon (or the SDK) and the clients leave a
# core free, so its work does not delay theirs.
EMULATOR_NICE=${EMULATOR_NICE:-19}
# The emulator creates several files per request.  On an ext4 /tmp that
# cost about 1 ms of CPU per file on the benchmark machine, against 13 us
# on tmpfs, and the emulator's bookkeeping should not limit the benchmark.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi
# Tickets fetched at once before each measured run.  The daemon then has
# learned how long tasks take and has opened all its connections to the
# endpoint (HTTP_CONNECTIONS_PER_HOST, 32), as it has on a machine that
# has been up for a while.
WARMUP=64
# The SDK client polls at this fixed interval, a common choice in code
# that calls the API directly.
SDK_POLL_MS=1000

command -v node > /dev/null || { echo "bench: node is not installed" >&2; exit 1; }
command -v pkg-config > /dev/null ||
	{ echo "bench: pkg-config is not installed" >&2; exit 1; }
"$here/tools/build.sh" > /dev/null
(cd "$here/bench" && npm install --no-audit --no-fund --silent > /dev/null)

top_srcdir=$here top_builddir=$here
. "$here/tests/integration/lib.sh"
require_tools
setup_work
KEEP_WORK=${KEEP_WORK:-}
# Every client and every emulator connection is a descriptor.
ulimit -n "$(ulimit -Hn)"

# One passwd entry per benchmark user, so the daemon can check each name.
max_count=0
for n in $counts; do [ "$n" -gt "$max_count" ] && max_count=$n; done
add_users() {
	local prefix=$1 count=$2 uid_base=$3 i
	for ((i = 0; i < count; i++)); do
		printf '%s%04d:x:%d:%d::/nonexistent:/bin/sh\n' "$prefix" "$i" \
			$((uid_base + i)) $((uid_base + i))
	done >> "$WORK/passwd"
}

# curl-floor, a minimal libcurl client, sends the daemon's kind of requests
# over as many connections as the daemon keeps (HTTP_CONNECTIONS_PER_HOST).
FLOOR_CONNECTIONS=32
# shellcheck disable=SC2046 # pkg-config prints several flags
cc -O2 -o "$WORK/curl-floor" "$here/bench/curl-floor.c" \
	$(pkg-config --cflags --libs libcurl openssl)

SECRET=$WORK/access-key-secret
results=$WORK/results.jsonl
: > "$results"

daemon_stat() {
	# Time on the CPU in ns (schedstat, where /proc/PID/stat counts 10 ms
	# ticks, 0.1 ms per ticket at 100 clients), then VmHWM and VmRSS in KiB.
	local pid=$1
	awk '{ print $1 }' "/proc/$pid/schedstat"
	awk '/^VmHWM:/ { print $2 } /^VmRSS:/ { print $2 }' "/proc/$pid/status"
}

# Prints the utime + stime, in clock ticks, of the emulator's processes:
# the one started last and the workers it forked.
emulator_ticks() {
	local parent=$1 pid total=0
	for pid in "$parent" $(pgrep -P "$parent"); do
		total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$total"
}

run_scenario() {
	local task_seconds=$1 n=$2 tag="t${1}n${2}"
	local prefix=d${tag}_ sdk_prefix=s${tag}_ warm_prefix=w${tag}_
	add_users "$prefix" "$n" 100000
	add_users "$warm_prefix" "$WARMUP" 300000
	EMULATOR_NAME=emu$tag EMULATOR_ARGS="--workers $EMULATOR_WORKERS" \
		EMULATOR_WRAPPER="nice -n $EMULATOR_NICE" \
		start_emulator "$task_seconds"
	local emulator_pid=${lib_pids[-1]}
	[ -f "$SECRET" ] || { cp "$WORK/emulator-secret" "$SECRET"; chmod 0600 "$SECRET"; }
	write_config "bench$tag" "$SECRET" <<'CONF'
max_tasks = 100000;
max_requests_per_second = 10000;
max_connections = 8192;
CONF
	local socket=$WORK/$tag.sock
	start_daemon "$WORK/bench$tag.conf" "$socket"
	local pid=${lib_pids[-1]}
	"$top_builddir/cloudappctl" --socket "$socket" --quiet status > /dev/null
	local idle_rss
	idle_rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	python3 "$here/bench/loadgen.py" "$socket" "$warm_prefix" "$WARMUP" \
		"$EMULATOR_STATE" > /dev/null

	local before after emulator_before emulator_after load
	load=$(cut -d ' ' -f 1 /proc/loadavg)
	before=$(daemon_stat "$pid" | head -n 1)
	emulator_before=$(emulator_ticks "$emulator_pid")
	python3 "$here/bench/loadgen.py" "$socket" "$prefix" "$n" \
		"$EMULATOR_STATE" > "$WORK/daemon-$tag.json"
	mapfile -t after < <(daemon_stat "$pid")
	emulator_after=$(emulator_ticks "$emulator_pid")

	# A minimal libcurl client, once per client count: the daemon's kind
	# of requests with nothing of the daemon around them (see
	# bench/curl-floor.c).
	local floor=null floor_output
	if [ "$task_seconds" = 0 ]; then
		if ! floor_output=$("$WORK/curl-floor" \
			"https://127.0.0.1:$EMULATOR_PORT" "$WORK/certs/ca.pem" \
			"$n" "$FLOOR_CONNECTIONS"); then
			echo "bench: curl-floor failed: $floor_output" >&2
			exit 1
		fi
		floor=$(awk '{ print $(NF - 4) }' <<< "$floor_output")
	fi

	NODE_EXTRA_CA_CERTS=$WORK/certs/ca.pem EMULATOR_STATE=$EMULATOR_STATE \
		node "$here/bench/sdk-client.js" "127.0.0.1:$EMULATOR_PORT" \
		"$TEST_ACCESS_KEY_ID" "$SECRET" "$TEST_APP_ID" "$sdk_prefix" \
		"$n" "$SDK_POLL_MS" > "$WORK/sdk-$tag.json"

	python3 - "$WORK/daemon-$tag.json" "$WORK/sdk-$tag.json" "$task_seconds" \
		"$n" "$before" "${after[0]}" "${after[1]}" "$idle_rss" \
		"$(getconf CLK_TCK)" "$((emulator_after - emulator_before))" \
		"$load" "$floor" >> "$results" <<'PY'
import json, sys
daemon = json.load(open(sys.argv[1]))
sdk = json.load(open(sys.argv[2]))
task, n = float(sys.argv[3]), int(sys.argv[4])
before, after, hwm, idle = (int(x) for x in sys.argv[5:9])
tick = int(sys.argv[9])
emulator_ticks, load = int(sys.argv[10]), float(sys.argv[11])
floor = json.loads(sys.argv[12])

def pct(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * p / 100))]

ok = max(daemon["ok"], 1)
sdk_ok = max(sdk["ok"], 1)
print(json.dumps({
    "task_seconds": task, "clients": n, "load_average": load,
    "curl_floor_ms_per_ticket": floor,
    "emulator_cpu_ms_per_request":
        emulator_ticks * 1000 / tick / max(daemon["calls"], 1),
    "daemon": {
        "ok": daemon["ok"], "wrong": daemon["wrong_ticket"],
        "errors": daemon["error_count"],
        "unrecorded": daemon.get("unrecorded", 0),
        "tickets_per_s": daemon["ok"] / daemon["wall_ms"] * 1000,
        "latency_p50_ms": pct(daemon["latency_ms"], 50),
        "latency_p99_ms": pct(daemon["latency_ms"], 99),
        "added_p50_ms": pct(daemon["added_ms"], 50),
        "added_p99_ms": pct(daemon["added_ms"], 99),
        "added_without_wait_p50_ms":
            pct(daemon["added_without_wait_ms"], 50),
        "added_without_wait_p99_ms":
            pct(daemon["added_without_wait_ms"], 99),
        "calls_per_ticket": daemon["calls"] / ok,
        "cpu_ms_per_ticket": (after - before) / 1e6 / ok,
        "peak_rss_kib": hwm, "idle_rss_kib": idle,
    },
    "sdk": {
        "ok": sdk["ok"], "wrong": sdk["wrong_ticket"],
        "errors": sdk["count"] - sdk["ok"],
        "tickets_per_s": sdk["ok"] / sdk["wall_ms"] * 1000,
        "latency_p50_ms": pct(sdk["latency_ms"], 50),
        "latency_p99_ms": pct(sdk["latency_ms"], 99),
        "calls_per_ticket": sdk["calls"] / sdk_ok,
        "cpu_ms_per_ticket": sdk["cpu_ms"] / sdk_ok,
        "peak_rss_kib": sdk["max_rss_kib"],
    },
}))
PY
	kill "$pid" 2>/dev/null || true
}

for task_seconds in 0 3; do
	for n in $counts; do
		step "task ${task_seconds} s, $n clients"
		run_scenario "$task_seconds" "$n"
	done
done

report=$here/bench/last-run.md
python3 - "$results" "$SDK_POLL_MS" "$EMULATOR_WORKERS" <<'PY' | tee "$report"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| task | clients | | tickets ok / wrong | tickets/s | p50 / p99 latency ms | "
      "p50 / p99 added ms | p50 / p99 added without connection wait ms | "
      "calls/ticket | CPU ms/ticket | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")

def pair(s, name):
    if s.get(name + "_p50_ms") is None:
        return ""
    return f"{s[name + '_p50_ms']:.2f} / {s[name + '_p99_ms']:.2f}"

for r in rows:
    for side in ("daemon", "sdk"):
        s = r[side]
        print(f"| {r['task_seconds']:g} s | {r['clients']} | {side} | "
              f"{s['ok']} / {s['wrong']} | {s['tickets_per_s']:.0f} | "
              f"{s['latency_p50_ms']:.0f} / {s['latency_p99_ms']:.0f} | "
              f"{pair(s, 'added')} | {pair(s, 'added_without_wait')} | "
              f"{s['calls_per_ticket']:.2f} | "
              f"{s['cpu_ms_per_ticket']:.3f} | "
              f"{s['peak_rss_kib'] / 1024:.1f} |")
print()
for r in rows:
    d, s = r["daemon"], r["sdk"]
    print(f"- task {r['task_seconds']:g} s, {r['clients']} clients: the SDK "
          f"used {s['cpu_ms_per_ticket'] / d['cpu_ms_per_ticket']:.1f} times "
          f"the daemon's CPU per ticket; daemon idle RSS "
          f"{d['idle_rss_kib'] / 1024:.1f} MiB; the emulator used "
          f"{r['emulator_cpu_ms_per_request']:.2f} ms of CPU per request "
          f"during the daemon's run; load average before the run "
          f"{r['load_average']:.2f}"
          + (f"; the emulator did not record the last call of "
             f"{d['unrecorded']} tickets, so their calls and added latency "
             f"are incomplete" if d.get("unrecorded") else ""))
print()
for r in rows:
    floor = r.get("curl_floor_ms_per_ticket")
    if floor is None:
        continue
    print(f"- minimal libcurl client (bench/curl-floor.c), {r['clients']} "
          f"tickets: {floor:.3f} ms of CPU per ticket; 20 times below the "
          f"SDK would be {r['sdk']['cpu_ms_per_ticket'] / 20:.3f} ms")
print(f"\nThe SDK client polls every {sys.argv[2]} ms; the emulator ran "
      f"{sys.argv[3]} worker processes.")
PY
