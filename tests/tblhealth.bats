#!/usr/bin/env bats
# tblhealth: /health and /metrics composed from hand-written state files, the
# tool's conventions, and clients that misbehave on purpose.
# Self-contained: needs the binaries, curl, jq and perl; promtool and strace
# for the tests that use them.

load helpers/common
bats_require_minimum_version 1.5.0

HOSTILE="$BATS_TEST_DIRNAME/helpers/hostile-http.pl"

setup_file() {
	require_bin tblhealth
}

setup() {
	STATE="$BATS_TEST_TMPDIR/state"
	LOG="$BATS_TEST_TMPDIR/tblhealth.log"
	mkdir -p "$STATE"
	export TBL_STATE_DIR="$STATE"
	unset HEALTH_CHECK_PORT HEALTH_CHECK_BIND STUCK_CHECK_INTERVAL LOG_LEVEL
	SERVER_PID=
	WAIT_PID=
	FLOODS=
}

teardown() {
	if [ -n "$FLOODS" ]; then
		kill $FLOODS 2>/dev/null || true
		wait $FLOODS 2>/dev/null || true
	fi
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		stop_server
	fi
	# Whatever a test did, the server wrote only JSON lines.
	if [ -s "$LOG" ]; then
		file_is_json "$LOG"
	fi
}

# Every line of the file is a JSON object.
file_is_json() {
	local l
	while IFS= read -r l; do
		jq -e 'type == "object"' <<<"$l" >/dev/null 2>&1 || {
			echo "not a JSON object on stderr: $l" >&2
			return 1
		}
	done <"$1"
}

# ---- the server ---------------------------------------------------------------

# Start tblhealth (extra options as arguments) on a port the kernel picks,
# read the port from its first log line, and set PORT and URL.
start_server() {
	tblhealth --bind 127.0.0.1 --port 0 "$@" 2>"$LOG" 3>&- &
	SERVER_PID=$!
	wait_port
}

# Send a signal (default TERM) and wait up to 5 s, then kill it; STOP_STATUS
# is the exit status. WAIT_PID, when set, is the process to wait for (strace).
stop_server() {
	local i
	kill -"${1:-TERM}" "$SERVER_PID"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
	STOP_STATUS=0
	wait "${WAIT_PID:-$SERVER_PID}" || STOP_STATUS=$?
	SERVER_PID=
	WAIT_PID=
}

# Wait for the port in the log of a server started by hand.
wait_port() {
	local i
	PORT=
	for ((i = 0; i < 200; i++)); do
		PORT=$(jq -r 'select(.port != null) | .port' "$LOG" 2>/dev/null | head -n 1)
		[ -n "$PORT" ] && break
		sleep 0.05
	done
	[ -n "$PORT" ] || { echo "tblhealth did not log its port" >&2; cat "$LOG" >&2; return 1; }
	URL="http://127.0.0.1:$PORT"
}

# GET (or another method with -X) a path: CODE, BODY, HEADERS.
get() {
	: >"$BATS_TEST_TMPDIR/body"
	: >"$BATS_TEST_TMPDIR/headers"
	CODE=$(curl -s -D "$BATS_TEST_TMPDIR/headers" -o "$BATS_TEST_TMPDIR/body" \
	    -w '%{http_code}' --max-time 5 "${@:2}" "$URL$1") || true
	BODY=$(cat "$BATS_TEST_TMPDIR/body")
	HEADERS=$(tr -d '\r' <"$BATS_TEST_TMPDIR/headers")
}

health() {
	get /health
}

# Ask /health until it answers 200, for up to $1 seconds.
health_within() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		health
		[ "$CODE" = 200 ] && return 0
		sleep 0.1
	done
	echo "no 200 from /health within $1 s (last: $CODE)" >&2
	return 1
}

# A member of BODY, as jq -r prints it.
field() {
	jq -r "$@" <<<"$BODY"
}

# Send raw bytes (printf %b escapes) on one connection: RESPONSE and STATUS_LINE.
raw() {
	RESPONSE=$(printf '%b' "$1" | perl "$HOSTILE" send "$PORT" "${2:-5}" 2>"$BATS_TEST_TMPDIR/raw.end" | tr -d '\0')
	STATUS_LINE=$(head -n 1 <<<"$RESPONSE" | tr -d '\r')
	RAW_END=$(cat "$BATS_TEST_TMPDIR/raw.end")
}

# Send raw bytes and expect this status line.
answers() {
	raw "$1"
	[ "$STATUS_LINE" = "$2" ] || { echo "got '$STATUS_LINE' for: ${1:0:80}"; return 1; }
}

# ---- state files -----------------------------------------------------------------

# The members of each state file (docs/state.md) for a pipeline that runs well;
# $now is the time the file is written.
defaults() {
	case $1 in
	tableinator)
		echo '{tool:"tableinator",pid:101,started:($now-100),heartbeat:$now,
		  state:"running",current_task:"Running the pipeline",restarts:0,
		  pipeline_started:($now-500),last_exit:null,next_check:0,queue_depths:null,
		  stuck_check_interval:30}' ;;
	amqp-drain)
		echo '{tool:"amqp-drain",pid:102,started:($now-50),heartbeat:$now,
		  state:"consuming",connection:"c1",mode:"pipeline",prefetch:200,
		  active_consumers:["artists","labels","masters","releases"],completed_files:[],
		  message_counts:{artists:0,labels:0,masters:0,releases:0},
		  last_message_time:{artists:0,labels:0,masters:0,releases:0},
		  deliveries:0,acked:0,rejected:0,controls:0,redelivered:0,unsettled:0}' ;;
	tblload)
		echo '{tool:"tblload",pid:103,started:($now-50),heartbeat:$now,state:"idle",
		  db_ok:true,outage_since:null,last_error:null,last_commit:0,batches:0,
		  rejected:0,nul_removed:0,
		  rows:({inserted:0,updated:0,unchanged:0,rejected:0} as $z |
		    {artists:$z,labels:$z,masters:$z,releases:$z}),
		  batch_seconds:{le:[0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10],
		    counts:[0,0,0,0,0,0,0,0,0,0,0,0],sum:0,count:0}}' ;;
	esac
}

# put NAME [FILTER]: write NAME.json the way the tools do (a temporary file,
# then rename): the defaults changed by the jq FILTER, where $now is now.
put() {
	jq -n --argjson now "$(date +%s.%N)" "$(defaults "$1") | ${2:-.}" >"$STATE/.$1.tmp"
	mv "$STATE/.$1.tmp" "$STATE/$1.json"
}

running_pipeline() {
	put tableinator
	put amqp-drain
	put tblload
}

# ---- conventions ---------------------------------------------------------------------

@test "--help and --version print to stdout and exit 0" {
	run -0 --separate-stderr tblhealth --help
	[[ "${lines[0]}" == "usage: tblhealth "* ]]
	[ -z "$stderr" ]
	run -0 --separate-stderr tblhealth --version
	[[ "$output" =~ ^tblhealth\ \(tableinator\)\ [0-9] ]]
}

@test "a bad option or argument exits 64 with one JSON line" {
	run -64 --separate-stderr tblhealth --nope
	[[ "$(jq -r .event <<<"$stderr")" == *"'--nope'"* ]]
	run -64 --separate-stderr tblhealth --port 70000
	[[ "$(jq -r .event <<<"$stderr")" == "option --port: '70000' is out of range"* ]]
	run -64 --separate-stderr tblhealth --timeout 0
	run -64 --separate-stderr tblhealth --max-connections 0
	run -64 --separate-stderr tblhealth --max-connections 64k
	run -64 --separate-stderr tblhealth --max-per-ip -1
	[[ "$(jq -r .event <<<"$stderr")" == "option --max-per-ip: '-1' is out of range"* ]]
	run -64 --separate-stderr tblhealth --max-per-ip 10001
	run -64 --separate-stderr tblhealth --max-per-ip ''
	run -64 --separate-stderr tblhealth extra
	[ "$(jq -r .exit_status <<<"$stderr")" = 64 ]
}

@test "bad configuration exits 78 naming the variable" {
	HEALTH_CHECK_PORT=80x run -78 --separate-stderr tblhealth
	[[ "$(jq -r .event <<<"$stderr")" == "HEALTH_CHECK_PORT: '80x' is not a number"* ]]
	HEALTH_CHECK_PORT=65536 run -78 --separate-stderr tblhealth
	[[ "$(jq -r .event <<<"$stderr")" == "HEALTH_CHECK_PORT: '65536' is out of range"* ]]
	STUCK_CHECK_INTERVAL=0 run -78 --separate-stderr tblhealth --port 0
	[[ "$(jq -r .event <<<"$stderr")" == "STUCK_CHECK_INTERVAL: "* ]]
	LOG_LEVEL=loud run -78 --separate-stderr tblhealth
	[[ "$(jq -r .event <<<"$stderr")" == "LOG_LEVEL: "* ]]
	HEALTH_CHECK_BIND=300.1.2.3 run -78 --separate-stderr tblhealth --port 0
	[[ "$(jq -r .event <<<"$stderr")" == "bind address '300.1.2.3'"* ]]
	TBL_STATE_DIR= run -78 --separate-stderr tblhealth
	[[ "$(jq -r .event <<<"$stderr")" == "TBL_STATE_DIR is not set"* ]]
	TBL_STATE_DIR=$BATS_TEST_TMPDIR/none run -78 --separate-stderr tblhealth
	[[ "$(jq -r .event <<<"$stderr")" == *"none: No such file or directory" ]]
}

@test "a port already in use exits 69" {
	start_server
	HEALTH_CHECK_BIND=127.0.0.1 HEALTH_CHECK_PORT=$PORT run -69 --separate-stderr tblhealth
	[[ "$(jq -r .event <<<"$stderr")" == "cannot listen on 127.0.0.1 port $PORT: Address already in use" ]]
}

@test "HEALTH_CHECK_PORT and HEALTH_CHECK_BIND choose where it listens" {
	local port
	port=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport')
	HEALTH_CHECK_BIND=127.0.0.1 HEALTH_CHECK_PORT=$port tblhealth 2>"$LOG" 3>&- &
	SERVER_PID=$!
	URL="http://127.0.0.1:$port"
	health_within 5
	[ "$(jq -r 'select(.port) | "\(.address) \(.port)"' "$LOG")" = "127.0.0.1 $port" ]
}

@test "SIGTERM and SIGINT stop it cleanly with status 0" {
	start_server
	stop_server TERM
	[ "$STOP_STATUS" -eq 0 ]
	[ "$(jq -r .event "$LOG" | tail -n 1)" = "✅ Health server stopped" ]
	start_server
	stop_server INT
	[ "$STOP_STATUS" -eq 0 ]
}

@test "requests are not logged at info level, but are at debug" {
	start_server
	health
	get /nowhere
	[ "$(wc -l <"$LOG")" -eq 1 ]
	stop_server
	LOG_LEVEL=debug start_server
	get /nowhere
	stop_server
	[ "$(jq -r 'select(.event == "Request") | "\(.method) \(.path) \(.status)"' "$LOG")" = "GET /nowhere 404" ]
}

# ---- /health ----------------------------------------------------------------------

@test "no state file yet: starting, with every field of the original" {
	start_server
	health
	[ "$CODE" = 200 ]
	[[ "$HEADERS" == *"Content-Type: application/json"* ]]
	[ "$(field .status)" = starting ]
	[ "$(field .service)" = tableinator ]
	[ "$(field .current_task)" = "Initializing PostgreSQL connection" ]
	[ "$(field .progress)" = 0 ]
	[ "$(field -c .message_counts)" = '{"artists":0,"labels":0,"masters":0,"releases":0}' ]
	[ "$(field -c .last_message_time)" = '{"artists":0,"labels":0,"masters":0,"releases":0}' ]
	[ "$(field -c .active_consumers)" = '[]' ]
	[ "$(field -c .completed_files)" = '[]' ]
	[[ "$(field .timestamp)" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}:[0-9]{2}$ ]]
	[ "$(field -c 'keys_unsorted[0:9]')" = '["status","service","current_task","progress","message_counts","last_message_time","active_consumers","completed_files","timestamp"]' ]
}

@test "the timestamp carries the local time zone" {
	TZ=IST-5:30 start_server
	health
	[[ "$(field .timestamp)" == *"+05:30" ]]
}

@test "supervisor starting: starting, with its current task" {
	put tableinator '.state = "starting" | .current_task = "Waiting STARTUP_DELAY (10 s)"'
	# Files left by an earlier run do not count while the supervisor starts.
	put amqp-drain '.heartbeat = $now - 3600'
	start_server
	health
	[ "$CODE" = 200 ]
	[ "$(field .status)" = starting ]
	[ "$(field .current_task)" = "Waiting STARTUP_DELAY (10 s)" ]
}

@test "healthy pipeline: 200 and the fields are those of the state files" {
	running_pipeline
	put amqp-drain '.active_consumers = ["releases","artists"] | .completed_files = ["masters","labels"]
	    | .message_counts = {artists: 12, labels: 3, masters: 7, releases: 0}
	    | .last_message_time = {artists: ($now - 60), labels: 1700000000.25, masters: 0, releases: 0}'
	start_server
	health
	[ "$CODE" = 200 ]
	[ "$(field .status)" = healthy ]
	[ "$(field .progress)" = 0.5 ]
	[ "$(field -c .message_counts)" = '{"artists":12,"labels":3,"masters":7,"releases":0}' ]
	[ "$(field .last_message_time.labels)" = 1700000000.25 ]
	[ "$(field .last_message_time.masters)" = 0 ]
	[ "$(field -c .active_consumers)" = '["artists","releases"]' ]
	[ "$(field -c .completed_files)" = '["labels","masters"]' ]
	[ "$(field -c .problems)" = '[]' ]
	[ "$(field .pipeline.tblload.state)" = idle ]
	[ "$(field .database.reachable)" = true ]
	[ "$(field .current_task)" = "Idle - waiting for messages" ]
}

@test "current_task: the first type with a message in the last 10 s is processing" {
	running_pipeline
	put amqp-drain '.last_message_time = {artists: ($now - 20), labels: ($now - 5), masters: ($now - 1), releases: 0}'
	start_server
	health
	[ "$(field .current_task)" = "Processing labels" ]
	put amqp-drain '.last_message_time.artists = $now - 2'
	health
	[ "$(field .current_task)" = "Processing artists" ]
}

@test "current_task: no consumers and nothing recent gives the supervisor's task, or null" {
	put tableinator '.state = "idle" | .current_task = "Checking queues every 3600 s"'
	put amqp-drain '.state = "stopped" | .active_consumers = [] | .heartbeat = $now - 500
	    | .completed_files = ["artists","labels","masters","releases"] | .message_counts.artists = 100'
	start_server
	health
	[ "$(field .current_task)" = "Checking queues every 3600 s" ]
	put tableinator '.state = "idle" | del(.current_task)'
	health
	[ "$(field .current_task)" = null ]
}

@test "idle: supervisor idle and stages stopped long ago is healthy" {
	put tableinator '.state = "idle" | .current_task = "Checking queues every 3600 s" | .pipeline_started = 0'
	put amqp-drain '.state = "stopped" | .heartbeat = $now - 7200 | .active_consumers = []
	    | .completed_files = ["artists","labels","masters","releases"]
	    | .message_counts = {artists: 5, labels: 5, masters: 5, releases: 5}'
	put tblload '.state = "stopped" | .heartbeat = $now - 7200'
	start_server
	health
	[ "$CODE" = 200 ]
	[ "$(field .status)" = healthy ]
	[ "$(field .progress)" = 1 ]
	[ "$(field -c .problems)" = '[]' ]
}

@test "unhealthy: a running stage's heartbeat older than twice STUCK_CHECK_INTERVAL" {
	running_pipeline
	put tblload '.state = "loading" | .heartbeat = $now - 61'
	start_server
	health
	[ "$CODE" = 503 ]
	[ "$(field .status)" = unhealthy ]
	[[ "$(field '.problems[0]')" == "tblload: no heartbeat for 61 s (limit 60 s), last state 'loading'" ]]
	put tblload '.heartbeat = $now - 59'
	health
	[ "$CODE" = 200 ]
	put amqp-drain '.heartbeat = $now - 100'
	health
	[ "$CODE" = 503 ]
	[[ "$(field '.problems[0]')" == "amqp-drain: no heartbeat for 100 s"* ]]
}

@test "STUCK_CHECK_INTERVAL sets the heartbeat limit" {
	running_pipeline
	put amqp-drain '.heartbeat = $now - 15'
	STUCK_CHECK_INTERVAL=5 start_server
	health
	[ "$CODE" = 503 ]
	[[ "$(field '.problems[0]')" == *"(limit 10 s)"* ]]
	stop_server
	start_server
	health
	[ "$CODE" = 200 ]
}

@test "a stopped stage is stale only while a pipeline runs, after its start grace" {
	put tableinator '.state = "idle"'
	put amqp-drain '.state = "stopped" | .heartbeat = $now - 500 | .active_consumers = []'
	start_server
	health
	[ "$CODE" = 200 ]
	# A new pipeline has just started: the file is the last one's; give it time.
	put tableinator '.pipeline_started = $now - 5'
	health
	[ "$CODE" = 200 ]
	put tableinator '.pipeline_started = $now - 70'
	health
	[ "$CODE" = 503 ]
	[[ "$(field '.problems[0]')" == "amqp-drain: no heartbeat for 70 s (limit 60 s), last state 'stopped'" ]]
}

@test "unhealthy: the supervisor's heartbeat is stale" {
	running_pipeline
	put tableinator '.heartbeat = $now - 120'
	start_server
	health
	[ "$CODE" = 503 ]
	[[ "$(field '.problems[0]')" == "tableinator: no heartbeat for 120 s (limit 60 s), last state 'running'" ]]
	put tableinator '.state = "starting" | .heartbeat = $now - 120'
	health
	[ "$CODE" = 503 ]
}

@test "unhealthy and STUCK: the supervisor restarts a dead pipeline" {
	running_pipeline
	put tableinator '.state = "restarting" | .restarts = 2 | .current_task = "Restarting in 4 s"'
	start_server
	health
	[ "$CODE" = 503 ]
	[ "$(field .current_task)" = "STUCK - consumers died, awaiting recovery" ]
	[ "$(field '.problems[0]')" = "tableinator: the pipeline died, restart 3 pending" ]
}

@test "unhealthy and STUCK: no consumers while files remain and messages came" {
	running_pipeline
	put amqp-drain '.active_consumers = [] | .completed_files = ["artists"]
	    | .message_counts.labels = 4 | .last_message_time.labels = $now - 1'
	start_server
	health
	[ "$CODE" = 503 ]
	[ "$(field .current_task)" = "STUCK - consumers died, awaiting recovery" ]
	[ "$(field '.problems[0]')" = "amqp-drain: no consumers left while work remains" ]
	# Not stuck: nothing consumed yet, or every file complete (the original's rule).
	put amqp-drain '.active_consumers = [] | .completed_files = ["artists"]'
	health
	[ "$CODE" = 200 ]
	put amqp-drain '.active_consumers = [] | .completed_files = ["artists","labels","masters","releases"]
	    | .message_counts.labels = 4'
	health
	[ "$CODE" = 200 ]
	[ "$(field .current_task)" = "Running the pipeline" ]
}

@test "unhealthy: PostgreSQL unreachable, then healthy again" {
	running_pipeline
	put tblload '.state = "retrying" | .db_ok = false | .outage_since = $now - 42
	    | .last_error = "connection refused"'
	start_server
	health
	[ "$CODE" = 503 ]
	[ "$(field '.problems[0]')" = "tblload: PostgreSQL unreachable for 42 s" ]
	[ "$(field .database.reachable)" = false ]
	[ "$(field .database.outage_seconds | cut -d. -f1)" = 42 ]
	# The error text stays in tblload's log, not on an unauthenticated port.
	[[ "$BODY" != *"connection refused"* ]]
	put tblload '.state = "loading" | .last_commit = $now'
	health
	[ "$CODE" = 200 ]
	[ "$(field .database.reachable)" = true ]
}

@test "tblload's own state file: PostgreSQL unreachable makes /health 503" {
	POSTGRES_ADDRESS=127.0.0.1:1 POSTGRES_USERNAME=u POSTGRES_PASSWORD=s3cr3t-pw-x7 \
	    POSTGRES_DATABASE=d tblload </dev/null 2>"$BATS_TEST_TMPDIR/tblload.log" 3>&- &
	local loader=$! i
	for ((i = 0; i < 50; i++)); do
		[ "$(jq -r .state "$STATE/tblload.json" 2>/dev/null)" = retrying ] && break
		sleep 0.1
	done
	start_server
	health
	kill -TERM "$loader"
	wait "$loader" || true
	[ "$CODE" = 503 ]
	[[ "$(field '.problems[0]')" == "tblload: PostgreSQL unreachable for "* ]]
	[ "$(field .database.reachable)" = false ]
	[[ "$BODY" != *s3cr3t* ]]
	get /metrics
	grep -qx 'tableinator_database_up 0' <<<"$BODY"
	[[ "$BODY" != *s3cr3t* ]]
}

@test "a state file that cannot be used is a problem, and is never followed elsewhere" {
	running_pipeline
	start_server
	printf '{"tool":' >"$STATE/tblload.json"
	health
	[ "$CODE" = 503 ]
	[ "$(field '.problems[0]')" = "tblload.json: not JSON: truncated" ]
	printf '{"a":1} {"b":2}' >"$STATE/tblload.json"
	health
	[[ "$(field '.problems[0]')" == "tblload.json: not "* ]]
	# json-c reads NaN even when strict; such a number counts as missing.
	printf '{"state":"loading","heartbeat":NaN}' >"$STATE/tblload.json"
	health
	[ "$(field '.problems[0]')" = "tblload: no heartbeat in its state file" ]
	rm "$STATE/tblload.json"
	ln -s /etc/passwd "$STATE/tblload.json"
	health
	[ "$(field '.problems[0]')" = "tblload.json: Too many levels of symbolic links" ]
	rm "$STATE/tblload.json"
	mkfifo "$STATE/tblload.json"
	health
	[ "$(field '.problems[0]')" = "tblload.json: not a regular file" ]
	rm "$STATE/tblload.json"
	head -c 70000 /dev/zero | tr '\0' ' ' >"$STATE/tblload.json"
	health
	[ "$(field '.problems[0]')" = "tblload.json: larger than 65536 bytes" ]
	rm "$STATE/tblload.json"
	health
	[ "$CODE" = 200 ]
}

@test "HEAD /health: the status and headers without a body" {
	running_pipeline
	start_server
	answers 'HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 200 OK"
	[[ "$RESPONSE" == *"Content-Type: application/json"* ]]
	# Nothing after the blank line that ends the head.
	[[ "$RESPONSE" == *$'\r\n\r' ]] || [[ "$RESPONSE" == *$'\r\n' ]]
	[[ "$RESPONSE" != *'"status"'* ]]
	put tblload '.heartbeat = $now - 1000'
	answers 'HEAD /health HTTP/1.0\r\n\r\n' "HTTP/1.1 503 Service Unavailable"
	[[ "$RESPONSE" != *'"status"'* ]]
}

@test "other paths are 404, other methods 405 with Allow" {
	start_server
	for p in / /health/ /healthz /HEALTH /metrics/x /%68ealth "/health%00" /health/../health; do
		get "$p" --path-as-is
		[ "$CODE" = 404 ] || { echo "$p: $CODE"; false; }
	done
	for m in POST PUT DELETE PATCH OPTIONS; do
		get /health -X "$m"
		[ "$CODE" = 405 ] || { echo "$m: $CODE"; false; }
		[[ "$HEADERS" == *"Allow: GET, HEAD"* ]]
		get /metrics -X "$m"
		[ "$CODE" = 405 ]
	done
	get /elsewhere -X POST
	[ "$CODE" = 404 ]
	# A query string does not change the resource.
	get '/health?verbose=1'
	[ "$CODE" = 200 ]
}

# ---- /metrics ----------------------------------------------------------------------

@test "/metrics passes promtool, with and without state files" {
	command -v promtool >/dev/null || skip "promtool (Debian package prometheus) is not installed"
	start_server
	get /metrics
	[ "$CODE" = 200 ]
	[[ "$HEADERS" == *"Content-Type: text/plain; version=0.0.4; charset=utf-8"* ]]
	promtool check metrics <<<"$BODY"
	running_pipeline
	put tableinator '.queue_depths = {artists: 5, labels: 0, masters: 2, releases: 9, total: 16}'
	get /metrics
	promtool check metrics <<<"$BODY"
	[[ "$BODY" == *'tableinator_queue_messages{queue="releases"} 9'* ]]
	[[ "$BODY" != *'queue="total"'* ]]
}

@test "/metrics: the counters are the values in the state files" {
	running_pipeline
	put tableinator '.restarts = 3'
	put amqp-drain '.message_counts = {artists: 1000, labels: 20, masters: 3, releases: 123456789}
	    | .acked = 1100 | .rejected = 7 | .redelivered = 2 | .controls = 4 | .unsettled = 17'
	put tblload '.batches = 12 | .nul_removed = 5
	    | .rows.artists = {inserted: 900, updated: 50, unchanged: 43, rejected: 7}
	    | .rows.releases = {inserted: 123456000, updated: 700, unchanged: 89, rejected: 0}
	    | .batch_seconds.counts = [0,1,2,0,0,3,0,0,0,0,5,1] | .batch_seconds.sum = 77.125
	    | .batch_seconds.count = 12'
	start_server
	get /metrics
	m() { awk -v k="$1" '$1 == k { print $2 }' <<<"$BODY"; }
	[ "$(m tableinator_up)" = 1 ]
	[ "$(m tableinator_restarts_total)" = 3 ]
	[ "$(m 'tableinator_messages_consumed_total{type="artists"}')" = 1000 ]
	[ "$(m 'tableinator_messages_consumed_total{type="releases"}')" = 123456789 ]
	[ "$(m tableinator_messages_acked_total)" = 1100 ]
	[ "$(m tableinator_messages_rejected_total)" = 7 ]
	[ "$(m tableinator_messages_redelivered_total)" = 2 ]
	[ "$(m tableinator_control_messages_total)" = 4 ]
	[ "$(m tableinator_unsettled_deliveries)" = 17 ]
	[ "$(m 'tableinator_rows_total{type="artists",outcome="inserted"}')" = 900 ]
	[ "$(m 'tableinator_rows_total{type="artists",outcome="updated"}')" = 50 ]
	[ "$(m 'tableinator_rows_total{type="artists",outcome="unchanged"}')" = 43 ]
	[ "$(m 'tableinator_rows_total{type="artists",outcome="rejected"}')" = 7 ]
	[ "$(m 'tableinator_rows_total{type="releases",outcome="inserted"}')" = 123456000 ]
	[ "$(m 'tableinator_rows_total{type="labels",outcome="inserted"}')" = 0 ]
	[ "$(m tableinator_batches_total)" = 12 ]
	[ "$(m tableinator_nul_removed_total)" = 5 ]
	[ "$(m 'tableinator_batch_duration_seconds_bucket{le="0.005"}')" = 0 ]
	[ "$(m 'tableinator_batch_duration_seconds_bucket{le="0.01"}')" = 1 ]
	[ "$(m 'tableinator_batch_duration_seconds_bucket{le="0.025"}')" = 3 ]
	[ "$(m 'tableinator_batch_duration_seconds_bucket{le="0.25"}')" = 6 ]
	[ "$(m 'tableinator_batch_duration_seconds_bucket{le="10"}')" = 11 ]
	[ "$(m 'tableinator_batch_duration_seconds_bucket{le="+Inf"}')" = 12 ]
	[ "$(m tableinator_batch_duration_seconds_count)" = 12 ]
	[ "$(m tableinator_batch_duration_seconds_sum)" = 77.125 ]
	[ "$(m tableinator_database_up)" = 1 ]
	[ "$(m 'tableinator_heartbeat_age_seconds{stage="tblload"}' | cut -d. -f1)" = 0 ]
	# Every sample of the file's families, none more.
	[ "$(grep -c '^tableinator_rows_total{' <<<"$BODY")" -eq 16 ]
	[ "$(grep -c '^tableinator_batch_duration_seconds_bucket{' <<<"$BODY")" -eq 12 ]
}

@test "/metrics: up is 0 and the status is named when unhealthy" {
	running_pipeline
	put tblload '.state = "retrying" | .db_ok = false | .outage_since = $now'
	start_server
	get /metrics
	[ "$CODE" = 200 ]
	grep -qx 'tableinator_up 0' <<<"$BODY"
	grep -qx 'tableinator_health_status{status="unhealthy"} 1' <<<"$BODY"
	grep -qx 'tableinator_database_up 0' <<<"$BODY"
}

@test "the broker node amqp-drain is on, in /health and /metrics; an unreachable dead-letter queue is a problem" {
	running_pipeline
	put amqp-drain '.broker = "10.0.0.2:5672" | .brokers = 3 | .dead_letter_unreachable = [] | .held = 0'
	start_server
	health
	[ "$CODE" = 200 ]
	[ "$(field -c .broker)" = '{"node":"10.0.0.2:5672","nodes":3,"dead_letter_unreachable":[],"held_rejects":0}' ]
	get /metrics
	grep -qx 'tableinator_broker_info{broker="10.0.0.2:5672"} 1' <<<"$BODY"
	grep -qx 'tableinator_brokers 3' <<<"$BODY"
	grep -qx 'tableinator_dead_letter_unreachable{type="labels"} 0' <<<"$BODY"
	grep -qx 'tableinator_rejects_held 0' <<<"$BODY"
	! command -v promtool >/dev/null || promtool check metrics <<<"$BODY"
	# The node of the dead-letter queues is down: poison waits, unhealthy.
	put amqp-drain '.broker = "[fd00::2]:5672" | .brokers = 3 | .dead_letter_unreachable = ["artists","releases","nope"] | .held = 2'
	health
	[ "$CODE" = 503 ]
	[ "$(field '.problems[0]')" = "amqp-drain: the dead-letter queue of artists, releases is unreachable (its node is down); 2 poison messages wait unacked" ]
	[ "$(field -c .broker)" = '{"node":"[fd00::2]:5672","nodes":3,"dead_letter_unreachable":["artists","releases"],"held_rejects":2}' ]
	get /metrics
	grep -qxF 'tableinator_broker_info{broker="[fd00::2]:5672"} 1' <<<"$BODY"
	grep -qx 'tableinator_dead_letter_unreachable{type="releases"} 1' <<<"$BODY"
	grep -qx 'tableinator_rejects_held 2' <<<"$BODY"
	# Before amqp-drain wrote these members: none of them, healthy.
	put amqp-drain
	health
	[ "$CODE" = 200 ]
	[ "$(field -c .broker)" = '{"node":null,"nodes":0,"dead_letter_unreachable":[],"held_rejects":0}' ]
	get /metrics
	! grep -q 'broker_info\|dead_letter\|rejects_held' <<<"$BODY"
	# A label value that is not plainly a host:port is left out.
	put amqp-drain '.broker = "a\"b\\n"'
	get /metrics
	! grep -q 'broker_info' <<<"$BODY"
}

# ---- hostile clients -------------------------------------------------------------------

@test "a request head over 8 KiB gets 431 (414 for the request line) and the connection closed" {
	start_server
	local pad
	pad=$(head -c 8200 /dev/zero | tr '\0' a)
	# 8192 bytes of head in all (42 besides the pad): still served.
	answers "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${pad:0:8150}\r\n\r\n" "HTTP/1.1 200 OK"
	answers "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${pad:0:8151}\r\n\r\n" "HTTP/1.1 431 Request Header Fields Too Large"
	[[ "$RESPONSE" == *"Connection: close"* ]]
	[[ "$RAW_END" == "end: eof "* ]]
	# A head of 8192 bytes that is all request line (25 besides the query)
	# is served; a request line over 8192 bytes is not.
	answers "GET /health?${pad:0:8167} HTTP/1.0\r\n\r\n" "HTTP/1.1 200 OK"
	answers "GET /health?${pad:0:8168} HTTP/1.0\r\n\r\n" "HTTP/1.1 431 Request Header Fields Too Large"
	answers "GET /health?${pad:0:8170} HTTP/1.0\r\n\r\n" "HTTP/1.1 414 URI Too Long"
	[[ "$RAW_END" == "end: eof "* ]]
	# Far beyond: libmicrohttpd refuses it before it is whole.
	answers "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: $pad$pad$pad$pad$pad$pad\r\n\r\n" "HTTP/1.1 431 Request Header Fields Too Large"
	answers "GET /$pad$pad$pad$pad$pad$pad HTTP/1.1\r\n\r\n" "HTTP/1.1 414 URI Too Long"
	answers "GET /health HTTP/1.1\r\n$(printf 'X-A: b\\r\\n%.0s' {1..3000})\r\n" "HTTP/1.1 431 Request Header Fields Too Large"
	health
	[ "$CODE" = 200 ]
}

@test "no request head over 8 KiB is ever served, whatever its size" {
	start_server
	local n
	for ((n = 8200; n <= 40000; n += 97)); do
		raw "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: $(head -c "$n" /dev/zero | tr '\0' a)\r\n\r\n"
		# 431, or (just under libmicrohttpd's connection memory) a close without answer.
		[[ "$STATUS_LINE" == "HTTP/1.1 431 "* || -z "$STATUS_LINE" ]] || { echo "$n: $STATUS_LINE"; false; }
		[[ "$RAW_END" == "end: eof "* ]]
	done
}

@test "a client sending one byte a second, or nothing, is dropped while others are served" {
	start_server --timeout 2
	perl "$HOSTILE" slow "$PORT" 0.5 10 >"$BATS_TEST_TMPDIR/slow" 3>&- &
	local slow=$!
	perl "$HOSTILE" slow "$PORT" 0 10 >"$BATS_TEST_TMPDIR/silent" 3>&- &
	local silent=$!
	local i t
	for ((i = 0; i < 10; i++)); do
		t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 2 "$URL/health")
		[[ "$t" == "200 0."* ]] || { echo "request $i: $t"; false; }
		awk -v t="${t#* }" 'BEGIN { exit !(t < 0.5) }'
		sleep 0.3
	done
	wait "$slow"
	wait "$silent"
	# Dropped after the 2 s timeout, well before the client's 10 s.
	[[ "$(cat "$BATS_TEST_TMPDIR/slow")" =~ ^closed\ after\ [23]\. ]]
	[[ "$(cat "$BATS_TEST_TMPDIR/silent")" =~ ^closed\ after\ [23]\. ]]
}

@test "a thousand connections at once: descriptors and memory stay bounded, then it answers" {
	start_server --timeout 2
	perl "$HOSTILE" flood "$PORT" 1000 4 >"$BATS_TEST_TMPDIR/flood" 3>&- &
	local flood=$! i fds rss
	for ((i = 0; i < 100; i++)); do
		grep -q opened "$BATS_TEST_TMPDIR/flood" && break
		sleep 0.1
	done
	grep -qx 'opened=1000' "$BATS_TEST_TMPDIR/flood"
	fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")
	echo "fds=$fds rss_kb=$rss"
	# 64 connections at most (8 from one address), plus a few of its own.
	[ "$fds" -le 80 ]
	[ "$rss" -lt 65536 ]
	# The flood still holds its sockets; the server dropped them after 2 s.
	health_within 4
	wait "$flood"
	grep -qx 'closed_by_server=1000 answered=0' "$BATS_TEST_TMPDIR/flood"
}

# flood N SEND ADDRESS...: N connections from each loopback address, SEND
# sent on each, held until flood_end (30 s at most); waits until all are open.
flood() {
	local n=$1 send=$2 a i
	shift 2
	for a; do
		: >"$BATS_TEST_TMPDIR/flood.$a"
		perl "$HOSTILE" flood "$PORT" "$n" 30 "$a" "$send" >"$BATS_TEST_TMPDIR/flood.$a" 3>&- &
		FLOODS+=" $!"
	done
	for a; do
		for ((i = 0; i < 100; i++)); do
			grep -q opened "$BATS_TEST_TMPDIR/flood.$a" && break
			sleep 0.1
		done
		grep -qx "opened=$n" "$BATS_TEST_TMPDIR/flood.$a"
	done
}

# Close the floods' connections; each prints what the server did meanwhile.
flood_end() {
	kill -USR1 $FLOODS
	wait $FLOODS
	FLOODS=
}

# The sum of what the floods from these addresses counted (closed_by_server, answered).
flood_sum() {
	local key=$1 a
	shift
	for a; do
		cat "$BATS_TEST_TMPDIR/flood.$a"
	done | grep -o "$key=[0-9]*" | awk -F= '{ n += $2 } END { print n + 0 }'
}

# GET /health from this loopback address: 200 within a second (a client
# kept out waits for the 10 s timeout).
probe() {
	local t
	t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 3 --interface "$1" \
	    "$URL/health") || true
	echo "probe from $1: $t"
	[[ "$t" == "200 "* ]] && awk -v t="${t#* }" 'BEGIN { exit !(t < 1) }'
}

# Descriptors and resident memory of the server: FDS, RSS (KiB).
server_usage() {
	FDS=$(ls "/proc/$SERVER_PID/fd" | wc -l)
	RSS=$(awk '/^VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")
	echo "fds=$FDS rss_kb=$RSS"
}

# Wait up to 2 s for the server to hold at most $1 descriptors.
fds_at_most() {
	local i
	for ((i = 0; i < 20; i++)); do
		server_usage
		[ "$FDS" -le "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Each of these floods the server from other loopback addresses; it answers
# a client after the flood's connections, which it accepts in order.
@test "80 idle connections from two addresses: a third, and each of the two, are answered at once" {
	start_server
	flood 40 '' 127.0.0.2 127.0.0.3
	probe 127.0.0.4
	# 8 connections from each address (the default per-address limit).
	server_usage
	[ "$FDS" -le 30 ]
	# A client behind a flooding address displaces the flood's oldest connection.
	probe 127.0.0.2
	probe 127.0.0.1
	flood_end
	grep -qx 'closed_by_server=33 answered=0' "$BATS_TEST_TMPDIR/flood.127.0.0.2"
	grep -qx 'closed_by_server=32 answered=0' "$BATS_TEST_TMPDIR/flood.127.0.0.3"
}

@test "idle connections from more addresses than there are slots: a newcomer is still answered" {
	start_server
	# 80 for 64 slots, half of them with half a request line.
	flood 8 '' 127.0.0.{10..14}
	flood 8 'GET /hea' 127.0.0.{15..19}
	probe 127.0.0.4
	server_usage
	[ "$FDS" -le 80 ]
	[ "$RSS" -lt 65536 ]
	probe 127.0.0.10
	flood_end
	# One slot is kept free: 63 of the 80 stay and the rest are displaced,
	# the oldest first; the first probe displaces one more, whose slot the
	# second finds free.
	[ "$(flood_sum closed_by_server 127.0.0.{10..19})" -eq 18 ]
	# The floods have ended: every slot is free again at once.
	probe 127.0.0.4
	fds_at_most 10
}

@test "--max-connections and --max-per-ip set the slots a flood can hold" {
	start_server --max-connections 16 --max-per-ip 3
	flood 20 '' 127.0.0.2
	probe 127.0.0.2
	server_usage
	[ "$FDS" -le 12 ]
	flood_end
	# 3 stay; the probe displaced one more of them.
	grep -qx 'closed_by_server=18 answered=0' "$BATS_TEST_TMPDIR/flood.127.0.0.2"
	stop_server
	# No per-address limit: 15 of the 16 slots, one kept free.
	start_server --max-connections 16 --max-per-ip 0
	flood 20 '' 127.0.0.2
	probe 127.0.0.2
	probe 127.0.0.3
	server_usage
	[ "$FDS" -le 24 ]
	flood_end
	grep -qx 'closed_by_server=6 answered=0' "$BATS_TEST_TMPDIR/flood.127.0.0.2"
}

@test "clients that send a request and never read the response: answered, and their slots freed" {
	running_pipeline
	put tableinator '.queue_depths = {artists: 1, labels: 2, masters: 3, releases: 4, total: 10}'
	start_server
	server_usage
	local base=$FDS
	# 56 connections, each asking for a /metrics of about 6 KB that it never
	# reads (fewer than the 63 slots, so that none is displaced before it asks).
	flood 7 $'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' 127.0.0.{20..27}
	probe 127.0.0.4
	# The responses wait in the socket buffers; the server has closed its ends.
	fds_at_most "$base"
	flood_end
	[ "$(flood_sum answered 127.0.0.{20..27})" -eq 56 ]
	[ "$(flood_sum closed_by_server 127.0.0.{20..27})" -eq 56 ]
}

@test "random bytes, .. paths, NULs and huge Content-Length: answered or closed, never a crash" {
	running_pipeline
	start_server --timeout 2
	# Answered 400, or dropped at the timeout.
	raw '\x00\xff\xfe garbage \r\n\r\n'
	[[ "$STATUS_LINE" == "HTTP/1.1 400 Bad Request" || -z "$STATUS_LINE" ]]
	[[ "$RAW_END" == "end: eof "* ]]
	answers 'garbage x\r\n\r\n' "HTTP/1.1 400 Bad Request"
	raw 'garbage\r\n\r\n'
	[[ "$RAW_END" == "end: eof "* ]]
	answers 'GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 404 Not Found"
	[[ "$RESPONSE" != *root:* ]]
	answers 'GET /health/../../../etc/passwd HTTP/1.0\r\n\r\n' "HTTP/1.1 404 Not Found"
	answers 'GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 404 Not Found"
	# libmicrohttpd ends the path at a raw NUL: this one is /health.
	answers 'GET /health\x00/x HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 200 OK"
	answers 'GET /x\x00/health HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 404 Not Found"
	answers 'GET /health%00 HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 404 Not Found"
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n'
	[[ "$STATUS_LINE" =~ ^HTTP/1.1\ (400|413)\  ]]
	answers 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\nabc' "HTTP/1.1 405 Method Not Allowed"
	[[ "$RAW_END" == "end: eof "* ]]
	answers 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n' "HTTP/1.1 200 OK"
	[[ "$RAW_END" == "end: eof "* ]]
	raw 'GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'
	[[ "$STATUS_LINE" =~ ^HTTP/1.1\ (200|400)\  ]]
	kill -0 "$SERVER_PID"
	health
	[ "$CODE" = 200 ]
}

@test "whatever is asked, only the three state files are opened" {
	command -v strace >/dev/null || skip "strace is not installed"
	# LeakSanitizer cannot stop the world under ptrace: no leak check here (ASan builds).
	ASAN_OPTIONS=detect_leaks=0 strace -f -qq \
	    -e trace=open,openat,openat2,creat,stat,lstat,newfstatat,statx,readlink,execve \
	    -o "$BATS_TEST_TMPDIR/trace" tblhealth --bind 127.0.0.1 --port 0 2>"$LOG" 3>&- &
	WAIT_PID=$!
	wait_port || skip "tblhealth does not start under strace here"
	SERVER_PID=$(cat "/proc/$WAIT_PID/task/$WAIT_PID/children")
	running_pipeline
	health
	[ "$CODE" = 200 ]
	# From here on, send what should reach other files.
	local start p
	start=$(wc -l <"$BATS_TEST_TMPDIR/trace")
	for p in /../../etc/passwd /health/../../etc/shadow /%2e%2e/etc/passwd "$STATE/tblload.json" \
	    /tblload.json /state/amqp-drain.json "/health?file=/etc/passwd"; do
		get "$p" --path-as-is
	done
	raw 'GET /health\x00/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n'
	perl "$HOSTILE" fuzz "$PORT" 300 7 >/dev/null
	health
	get /metrics
	stop_server
	[ "$STOP_STATUS" -eq 0 ]
	tail -n +"$((start + 1))" "$BATS_TEST_TMPDIR/trace" | grep -oE '"[^"]+"' | tr -d '"' |
	    sort -u >"$BATS_TEST_TMPDIR/paths"
	cat "$BATS_TEST_TMPDIR/paths"
	grep -qx "$STATE/tblload.json" "$BATS_TEST_TMPDIR/paths"
	while read -r p; do
		case $p in
		"$STATE" | "$STATE/tableinator.json" | "$STATE/amqp-drain.json" | "$STATE/tblload.json") ;;
		# glibc's malloc reads it when it trims a thread's arena.
		/proc/sys/vm/overcommit_memory) ;;
		*) echo "opened outside the state files: $p"; false ;;
		esac
	done <"$BATS_TEST_TMPDIR/paths"
}

@test "under AddressSanitizer, 10,000 random requests leave it alive, answering and clean" {
	local asan="$BATS_TEST_DIRNAME/../build-asan/bin/tblhealth"
	[ -x "$asan" ] || skip "no ASan build (make asan)"
	running_pipeline
	put tableinator '.queue_depths = {artists: 1, labels: 2, masters: 3, releases: 4, total: 10}'
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 "$asan" --bind 127.0.0.1 --port 0 --timeout 2 \
	    2>"$LOG" 3>&- &
	SERVER_PID=$!
	wait_port
	run -0 perl "$HOSTILE" fuzz "$PORT" 10000 "${TBL_FUZZ_SEED:-$RANDOM}"
	echo "$output"
	kill -0 "$SERVER_PID"
	health
	[ "$CODE" = 200 ]
	get /metrics
	[ "$CODE" = 200 ]
	stop_server
	[ "$STOP_STATUS" -eq 0 ]
	! grep -Eq 'Sanitizer|runtime error' "$LOG"
}

@test "the man page renders without warnings and documents every option, variable and metric" {
	command -v groff >/dev/null || skip "groff is not installed"
	local page="$BATS_TEST_DIRNAME/../docs/man/tblhealth.1" text word
	run -0 --separate-stderr groff -mandoc -Tutf8 -ww "$page"
	[ -z "$stderr" ]
	text=$(printf '%s\n' "${lines[@]}" | sed 's/.\x08//g')
	run -0 --separate-stderr tblhealth --help
	for word in $(grep -o -- '--[a-z-]*' <<<"$output") HEALTH_CHECK_PORT HEALTH_CHECK_BIND \
	    TBL_STATE_DIR STUCK_CHECK_INTERVAL LOG_LEVEL; do
		[[ "$text" == *"$word"* ]] || { echo "$word is not in the man page"; false; }
	done
	running_pipeline
	put tableinator '.queue_depths = {artists: 1, labels: 0, masters: 0, releases: 0, total: 1}'
	start_server
	get /metrics
	for word in $(awk '$1 == "#" && $2 == "TYPE" { print $3 }' <<<"$BODY"); do
		[[ "$text" == *"$word"* ]] || { echo "$word is not in the man page"; false; }
	done
	[[ "$text" == *"EXIT STATUS"* && "$text" == *"DIFFERENCES FROM THE ORIGINAL"* ]]
}
