#!/usr/bin/env bats
# Packaging (issue 13): the container image of the Containerfile, compose.yaml
# under docker-compose, the systemd units under a real systemd, and the
# Debian package, each built from this tree and run against the run's
# throwaway servers.
#
# Slow: it builds an image and a package. The images live in build/podman
# (helpers/podman.bash), so a second run takes its layers from the cache; the
# tests share one image, one package and one systemd container. systemd is
# not PID 1 on this machine: the units run under systemd as PID 1 of a
# container (podman --systemd=always), with the package installed by apt in
# a bare Debian. Every container shares the host's network, to reach the
# servers on 127.0.0.1. Needs root (debootstrap, podman storage, apt).
# needs: postgres rabbitmq

load helpers/common
load helpers/broker
load helpers/podman
bats_require_minimum_version 1.5.0
# A cold run on a busy machine builds for minutes; every wait inside has
# its own deadline.
BATS_TEST_TIMEOUT=1500

IMAGE=localhost/tableinator
DEB_IMAGE=localhost/tableinator-deb-test:latest
SD=tbl-systemd

setup_file() {
	((EUID == 0)) || skip "needs root: debootstrap, podman's storage, apt"
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	require_bin tblhealth amqp-fill
	pm_setup
	# Containers of a run that was killed.
	podman rm -a -f -t 0 >/dev/null 2>&1 || true
	VERSION=$(cat "$TBL_ROOT/VERSION")
	DEB=$TBL_ROOT/build/deb/tableinator_${VERSION}_$(dpkg --print-architecture).deb
	export VERSION DEB
}

teardown_file() {
	[[ -n ${CONTAINERS_CONF-} ]] || return 0
	podman rm -a -f -t 10 >/dev/null 2>&1 || true
}

setup() {
	rmq_newvhost
	pg_newdb
	PORT=$(tbl_free_port)
	export STARTUP_DELAY=0 HEALTH_CHECK_PORT=$PORT POSTGRES_BATCH_FLUSH_INTERVAL=0.2
}

teardown() {
	[[ -n ${COMPOSE_PROJECT-} ]] && compose down -t 5 >/dev/null 2>&1
	pm_service_stop
	podman rm -f -t 5 tbl-image >/dev/null 2>&1 || true
	return 0
}

# note TEXT: a line in the run's output (the measurements of the closing note).
note() {
	printf '# %s\n' "$*" >&3
}

# timed VAR COMMAND...: run COMMAND, its seconds in VAR.
timed() {
	local -n _t=$1
	local t0=$EPOCHREALTIME rc=0
	shift
	"$@" || rc=$?
	_t=$(since "$t0" "$EPOCHREALTIME")
	return $rc
}

# --- the image -----------------------------------------------------------------

# need_base: the Debian base image, made when it is missing.
need_base() {
	local t
	podman image exists "$PM_BASE" && return 0
	timed t with_timeout 1200 pm_base || flunk "could not make $PM_BASE" || return
	note "base image $PM_BASE made with debootstrap in $t s"
}

# build_image: `make image`, on the base.
build_image() {
	local ti log=$BATS_FILE_TMPDIR/image.log
	need_base || return
	timed ti with_timeout 1200 make -s -C "$TBL_ROOT" image ENGINE=podman IMAGE="$IMAGE" \
		>"$log" 2>&1 || flunk "make image failed: $(tail -n 30 "$log")" || return
	note "make image: $ti s ($(grep -c '^--> Using cache' "$log") steps from the cache)"
	touch "$BATS_FILE_TMPDIR/image"
}

need_image() {
	[[ -e $BATS_FILE_TMPDIR/image ]] || build_image
}

# healthy NAME: the container's HEALTHCHECK passes (podman runs it: without
# systemd nothing schedules it). Says "unhealthy" and exits 1 otherwise.
healthy() {
	podman healthcheck run "$1" >/dev/null 2>&1
}

# exit_code NAME: the exit status of a stopped container.
exit_code() {
	podman inspect --format '{{.State.ExitCode}}' "$1"
}

# releases_conserved PUBLISHED: every release published is a row or waits in
# its queue, never both: what was committed was acked before the stop
# ended. No delivery is left unacked, none was dead-lettered.
releases_conserved() {
	local rows ready unacked
	rows=$(psqlq -c 'SELECT count(*) FROM releases')
	read -r _ ready unacked < <(qstat | grep -P "^${QPREFIX}releases\t")
	assert_equal 0 "$unacked" || return
	assert_equal "$1" "$((rows + ready))" || return
	assert_equal 0 "$(qstat | awk -F'\t' '$1 ~ /\.dlq$/ { d += $2 + $3 } END { print d + 0 }')" || return
	note "stopped with $rows of $1 releases stored, $ready back in the queue"
}

@test "the health probe exits 0 on a 200 from GET /health only: 503, no server, a bad port give 1" {
	local probe=$TBL_ROOT/dist/container/healthcheck state=$BATS_TEST_TMPDIR/state pid
	mkdir -m 700 "$state"
	run -1 env HEALTH_CHECK_PORT=$PORT "$probe"
	run -1 env HEALTH_CHECK_PORT=8x "$probe"
	assert_contains "$output" "is not a port"
	run -1 env HEALTH_CHECK_PORT=0 "$probe"
	tblhealth --port "$PORT" --state-dir "$state" 2>/dev/null 3>&- &
	pid=$!
	wait_until 10 curl -s -o /dev/null "http://127.0.0.1:$PORT/health"
	# No state file yet: starting, 200.
	run -0 env HEALTH_CHECK_PORT=$PORT "$probe"
	# A state file that is not JSON: unhealthy, 503.
	echo garbage >"$state/tableinator.json"
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health"
	assert_output 503
	run -1 env HEALTH_CHECK_PORT=$PORT "$probe"
	assert_contains "$output" "503"
	kill "$pid"
	wait "$pid" || true
}

@test "make image: a multi-stage build; the image runs the supervisor as a non-root user, with a HEALTHCHECK, port 8002, no compiler" {
	local size
	rm -f "$BATS_FILE_TMPDIR/image"
	build_image
	run -0 podman image inspect --format '{{.User}}|{{json .Config.Entrypoint}}|{{json .HealthCheck.Test}}|{{json .Config.ExposedPorts}}|{{.Config.StopSignal}}' "$IMAGE:$VERSION"
	assert_output '10001:10001|["/usr/local/bin/tableinator"]|["CMD","/usr/local/libexec/tableinator-healthcheck"]|{"8002/tcp":{}}|SIGTERM'
	# latest is the same image.
	assert_equal "$(podman image inspect --format '{{.Id}}' "$IMAGE:$VERSION")" \
		"$(podman image inspect --format '{{.Id}}' "$IMAGE:latest")"
	run -0 podman run --rm --no-healthcheck "$IMAGE:$VERSION" --version
	assert_output "tableinator (tableinator) $VERSION"
	run -0 podman run --rm --no-healthcheck --entrypoint id "$IMAGE" -u
	assert_output 10001
	# The runtime stage has the libraries, not the build stage's tools.
	run -0 podman run --rm --no-healthcheck --entrypoint bash "$IMAGE" -c \
		'command -v gcc make; ls /usr/include/postgresql 2>&1; for t in amqp-drain amqp-fill tblbatch tblhash tblhealth tblload tblxml; do "$t" --version >/dev/null || echo "$t fails"; done'
	assert_output "ls: cannot access '/usr/include/postgresql': No such file or directory"
	# No configuration: the supervisor says which variable, exit 78.
	run -78 podman run --rm --no-healthcheck "$IMAGE"
	assert_contains "$output" "AMQP_CONNECTION (or AMQP_CONNECTION_FILE) is not set"
	size=$(podman image inspect --format '{{.Size}}' "$IMAGE:$VERSION")
	note "image $IMAGE:$VERSION: $((size / 1000000)) MB"
	((size < 130000000)) || flunk "the image has $size bytes: more than the runtime needs"
}

@test "the image against the throwaway servers: healthy, loads what is published, and podman stop drains the pipeline and exits 0" {
	local t0 tstart tstop log=$BATS_TEST_TMPDIR/container.log
	need_image
	publish_samples 100
	t0=$EPOCHREALTIME
	# Read-only, no capability, as compose.yaml runs it; one transaction a
	# message, so that the stop below finds a load in progress.
	podman run -d --name tbl-image --network host --read-only --cap-drop ALL \
		--security-opt no-new-privileges -e AMQP_CONNECTION -e POSTGRES_ADDRESS \
		-e POSTGRES_USERNAME -e POSTGRES_PASSWORD -e POSTGRES_DATABASE -e STARTUP_DELAY \
		-e HEALTH_CHECK_PORT -e POSTGRES_BATCH_FLUSH_INTERVAL -e POSTGRES_BATCH_MODE=false \
		"$IMAGE:$VERSION" >/dev/null 2>"$log" || flunk "podman run: $(cat "$log")"
	wait_until 60 healthy tbl-image || flunk "not healthy: $(podman logs tbl-image 2>&1 | tail -n 5)"
	tstart=$(since "$t0" "$EPOCHREALTIME")
	wait_until 60 counts_are "100 100 100 100"
	note "podman run to healthy: $tstart s"
	run -0 curl -s "http://127.0.0.1:$PORT/health"
	assert_equal healthy "$(jq -r .status <<<"$output")"

	samples releases | tail -n +101 | publish releases
	wait_until 30 rows_at_least 420
	t0=$EPOCHREALTIME
	run -0 podman stop -t 100 tbl-image
	tstop=$(since "$t0" "$EPOCHREALTIME")
	note "podman stop: $tstop s"
	assert_equal 0 "$(exit_code tbl-image)"
	run -0 podman logs tbl-image
	assert_contains "$output" '"event":"🛑 Stop requested: draining the pipeline"'
	assert_contains "$output" '"event":"✅ Loading finished"'
	assert_contains "$output" '"event":"👋 tableinator stopped"'
	releases_conserved 1000
}

# --- compose -------------------------------------------------------------------

# compose ARGS...: docker-compose on compose.yaml and this test's override,
# for at most 120 s.
compose() {
	timeout -k 5 120 docker-compose -p "$COMPOSE_PROJECT" -f "$TBL_ROOT/compose.yaml" \
		-f "$BATS_TEST_TMPDIR/compose.host.yaml" "$@"
}

@test "compose.yaml: docker-compose brings tableinator up against the throwaway servers, it loads a published sample, and down stops it with exit status 0" {
	local name
	need_image
	pm_service_start "$BATS_TEST_TMPDIR/podman.sock"
	export DOCKER_HOST=unix://$BATS_TEST_TMPDIR/podman.sock
	# The images of postgres and rabbitmq cannot be pulled here: the run's
	# servers stand in for them, on the host's network.
	cat >"$BATS_TEST_TMPDIR/compose.host.yaml" <<-EOF
		services:
		  rabbitmq:
		    network_mode: host
		  postgres:
		    network_mode: host
		  tableinator:
		    network_mode: host
		    environment:
		      AMQP_CONNECTION: "$AMQP_CONNECTION"
		      POSTGRES_ADDRESS: "$POSTGRES_ADDRESS"
		      POSTGRES_USERNAME: "$POSTGRES_USERNAME"
		      POSTGRES_PASSWORD: "$POSTGRES_PASSWORD"
		      POSTGRES_DATABASE: "$POSTGRES_DATABASE"
		      STARTUP_DELAY: "0"
		      HEALTH_CHECK_PORT: "$PORT"
		      POSTGRES_BATCH_FLUSH_INTERVAL: "0.2"
	EOF
	COMPOSE_PROJECT=$(tbl_name c)
	name=${COMPOSE_PROJECT}_tableinator_1
	run -0 compose up -d --no-deps --no-build tableinator
	# compose.yaml's settings reached the container.
	run -0 podman inspect --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.CapDrop}} {{.Config.Env}}' "$name"
	assert_contains "$output" "10001:10001 true"
	assert_contains "$output" "CAP_NET_RAW"
	assert_contains "$output" "POSTGRES_BATCH_SIZE=500"
	publish_samples 100
	wait_until 60 counts_are "100 100 100 100"
	wait_until 60 healthy "$name" || flunk "not healthy: $(podman logs "$name" 2>&1 | tail -n 5)"
	run -0 compose stop tableinator
	assert_equal 0 "$(exit_code "$name")"
	run -0 podman logs "$name"
	assert_contains "$output" '"event":"👋 tableinator stopped"'
	run -0 compose down
	run -0 podman ps -a --format '{{.Names}}' --filter "label=com.docker.compose.project=$COMPOSE_PROJECT"
	assert_output ""
	COMPOSE_PROJECT=
	assert_queues "0 0 0 0"
}

# --- systemd units and the Debian package ---------------------------------------

@test "make install-systemd: the units name the install's paths; the settings file is 0600 and kept when present" {
	local d=$BATS_TEST_TMPDIR/dest u
	run -0 make -s -C "$TBL_ROOT" install-systemd DESTDIR="$d" PREFIX=/opt/tbl
	run -0 find "$d" -type f -printf '%P %m\n'
	assert_output - <<-'EOF'
		opt/tbl/etc/default/tableinator 600
		opt/tbl/lib/systemd/system/tableinator-backfill.service 644
		opt/tbl/lib/systemd/system/tableinator-backfill.timer 644
		opt/tbl/lib/systemd/system/tableinator.service 644
	EOF
	u=$d/opt/tbl/lib/systemd/system
	run -0 grep -h -o -E '@[A-Z]+@|^(ExecStart|EnvironmentFile)=[^ ]*' "$u"/*
	assert_output - <<-'EOF'
		EnvironmentFile=/opt/tbl/etc/default/tableinator
		ExecStart=/bin/bash
		EnvironmentFile=/opt/tbl/etc/default/tableinator
		ExecStart=/opt/tbl/bin/tableinator
	EOF
	grep -q -- '/opt/tbl/bin/tblload --acks' "$u/tableinator-backfill.service"
	echo "AMQP_CONNECTION=mine" >"$d/opt/tbl/etc/default/tableinator"
	run -0 make -s -C "$TBL_ROOT" install-systemd DESTDIR="$d" PREFIX=/opt/tbl
	assert_equal "AMQP_CONNECTION=mine" "$(cat "$d/opt/tbl/etc/default/tableinator")"
	# PREFIX=/usr: the settings go to /etc.
	run -0 make -s -C "$TBL_ROOT" install-systemd DESTDIR="$d/usr-prefix" PREFIX=/usr
	[[ -f $d/usr-prefix/etc/default/tableinator ]]
}

@test "the cron backfill of tableinator(1) drains the queues until they are empty, loads what came and exits 0" {
	local script=$BATS_TEST_TMPDIR/backfill env=$BATS_TEST_TMPDIR/env
	# The script of the page's EXAMPLES, reading this test's settings.
	awk '/^#!\/bin\/bash$/ { on = 1 } on && /^\.Ed$/ { exit } on' \
		"$TBL_ROOT/docs/man/tableinator.1" | sed "s:/etc/tableinator.env:$env:" >"$script"
	grep -q 'amqp-drain --until-empty' "$script" || flunk "no backfill script in tableinator.1"
	printf '%s\n' "AMQP_CONNECTION=$AMQP_CONNECTION" "POSTGRES_ADDRESS=$POSTGRES_ADDRESS" \
		"POSTGRES_USERNAME=$POSTGRES_USERNAME" "POSTGRES_PASSWORD=$POSTGRES_PASSWORD" \
		"POSTGRES_DATABASE=$POSTGRES_DATABASE" >"$env"
	publish_samples 50
	run -0 with_timeout 60 bash "$script"
	assert_equal "50 50 50 50" "$(table_counts)"
	assert_queues "0 0 0 0"
}

@test "make deb: a package of VERSION with the tools, pages, SQL, units and /etc/default/tableinator; lintian finds nothing" {
	local tb tl said
	[[ $(dpkg-parsechangelog -l "$TBL_ROOT/debian/changelog" -S Version) == "$VERSION" ]] ||
		flunk "debian/changelog is not at version $VERSION (VERSION)"
	timed tb with_timeout 900 make -s -C "$TBL_ROOT" deb >"$BATS_TEST_TMPDIR/deb.log" 2>&1 ||
		flunk "make deb failed: $(tail -n 30 "$BATS_TEST_TMPDIR/deb.log")"
	note "make deb: $tb s"
	[[ -f $DEB ]] || flunk "no $DEB"
	run -0 dpkg-deb -c "$DEB"
	local f
	for f in ./usr/bin/tableinator ./usr/bin/amqp-drain ./usr/bin/amqp-fill ./usr/bin/tblbatch \
		./usr/bin/tblhash ./usr/bin/tblhealth ./usr/bin/tblload ./usr/bin/tblxml ./usr/bin/load-dump \
		./usr/share/tableinator/log.bash ./usr/share/tableinator/schema.sql \
		./usr/share/tableinator/queries.sql ./usr/share/man/man1/tableinator.1.gz \
		./usr/share/man/man1/tblload.1.gz ./lib/systemd/system/tableinator.service \
		./lib/systemd/system/tableinator-backfill.service \
		./lib/systemd/system/tableinator-backfill.timer; do
		[[ $'\n'$output$'\n' == *" $f"$'\n'* ]] || flunk "not in the package: $f" || return
	done
	[[ $output == *"-rw------- root/root "*" ./etc/default/tableinator"$'\n'* ]] ||
		flunk "no /etc/default/tableinator of mode 0600 in the package"
	run -0 dpkg-deb -f "$DEB" Version Depends
	assert_contains "$output" "Version: $VERSION"
	assert_contains "$output" "libpq5"
	assert_contains "$output" "librabbitmq4"
	[[ $(dpkg-deb -I "$DEB" conffiles) == /etc/default/tableinator ]]
	timed tl run lintian --fail-on error,warning --display-info "${DEB%_*.deb}_$(dpkg --print-architecture).changes"
	said=$(grep -v 'running with root privileges' <<<"$output" || true)
	note "lintian: $tl s, exit status $status${said:+, said: $said}"
	assert_success
	assert_equal "" "$said"
}

# build_deb_image: a bare Debian with systemd, then the package installed by
# apt, which must fetch its libraries.
build_deb_image() {
	local d=$BATS_FILE_TMPDIR/deb-image t
	[[ -f $DEB ]] || { make -s -C "$TBL_ROOT" deb >"$BATS_FILE_TMPDIR/deb.log" 2>&1 ||
		flunk "make deb failed: $(tail -n 30 "$BATS_FILE_TMPDIR/deb.log")" || return; }
	need_base || return
	mkdir -p "$d"
	cp "$DEB" "$d/"
	cat >"$d/Containerfile" <<-EOF
		FROM $PM_BASE
		RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd
		COPY ${DEB##*/} /tmp/
		RUN cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y ./${DEB##*/} && rm ${DEB##*/}
	EOF
	timed t with_timeout 900 podman build --format docker --network host --pull=never \
		-t "$DEB_IMAGE" "$d" >"$BATS_FILE_TMPDIR/deb-image.log" 2>&1 ||
		flunk "the package's image: $(tail -n 30 "$BATS_FILE_TMPDIR/deb-image.log")" || return
	note "image with systemd and the package: $t s"
	touch "$BATS_FILE_TMPDIR/deb-image"
}

need_deb_image() {
	[[ -e $BATS_FILE_TMPDIR/deb-image ]] || build_deb_image
}

@test "apt-get install ./tableinator_*.deb in a bare Debian fetches its libraries; tableinator --version and a replay work" {
	local libs="libjson-c5 libmicrohttpd12 libpq5 librabbitmq4" t
	rm -f "$BATS_FILE_TMPDIR/deb-image"
	build_deb_image
	# Not in the base: apt fetched them for the package.
	run podman run --rm --no-healthcheck --entrypoint dpkg-query "$PM_BASE" -W $libs
	assert_failure
	run -0 podman run --rm "$DEB_IMAGE" bash -c "apt-mark showauto $libs; dpkg-query -W -f '\${db:Status-Status}\n' tableinator"
	assert_output - <<-EOF
		${libs// /$'\n'}
		installed
	EOF
	run -0 podman run --rm "$DEB_IMAGE" tableinator --version
	assert_output "tableinator (tableinator) $VERSION"
	run -0 podman run --rm "$DEB_IMAGE" bash -c 'command -v tableinator tblload; ls /usr/share/tableinator'
	assert_output - <<-'EOF'
		/usr/bin/tableinator
		/usr/bin/tblload
		common.bash
		log.bash
		queries.sql
		schema.sql
	EOF
	# The replay of the README, with the package's tools.
	run -0 podman run --rm --network host -v "$MSG:/samples:ro" -e POSTGRES_ADDRESS \
		-e POSTGRES_USERNAME -e POSTGRES_PASSWORD -e POSTGRES_DATABASE "$DEB_IMAGE" bash -c '
		set -o pipefail
		for t in artists labels masters releases; do
			zcat /samples/discogs_20200806_$t.ndjson.gz | tblhash --type $t | tblbatch --size 1000 | tblload 2>/dev/null || exit
		done'
	assert_equal "1000 1000 1000 1000" "$(table_counts)"
}

# need_systemd: the package's image running systemd as PID 1, in $SD.
need_systemd() {
	if [[ $(podman inspect --format '{{.State.Running}}' "$SD" 2>/dev/null) != true ]]; then
		need_deb_image || return
		podman rm -f "$SD" >/dev/null 2>&1
		podman run -d --name "$SD" --network host --systemd=always --no-healthcheck \
			"$DEB_IMAGE" /lib/systemd/systemd >/dev/null 2>"$BATS_FILE_TMPDIR/systemd.log" ||
			flunk "systemd in a container: $(cat "$BATS_FILE_TMPDIR/systemd.log")" || return
	fi
	wait_until 60 sd_booted || flunk "systemd did not boot: $(podman logs "$SD" 2>&1 | tail -n 10)"
}

sd_booted() {
	local st
	st=$(podman exec "$SD" systemctl is-system-running 2>/dev/null)
	[[ $st == running || $st == degraded ]]
}

# sd COMMAND...: COMMAND in the systemd container, for at most 150 s.
sd() {
	timeout -k 5 150 podman exec "$SD" "$@"
}

# sd_settings [VAR=VALUE...]: /etc/default/tableinator of the container, for
# this test's servers, with the changes given.
sd_settings() {
	{
		printf '%s\n' "AMQP_CONNECTION=$AMQP_CONNECTION" "POSTGRES_ADDRESS=$POSTGRES_ADDRESS" \
			"POSTGRES_USERNAME=$POSTGRES_USERNAME" "POSTGRES_PASSWORD=$POSTGRES_PASSWORD" \
			"POSTGRES_DATABASE=$POSTGRES_DATABASE" STARTUP_DELAY=0 "HEALTH_CHECK_PORT=$PORT" \
			POSTGRES_BATCH_FLUSH_INTERVAL=0.2
		printf '%s\n' "$@"
	} | podman exec -i "$SD" sh -c 'cat >/etc/default/tableinator'
}

# sd_reset: no unit of ours running or failed.
sd_reset() {
	sd systemctl stop tableinator.service tableinator-backfill.service tableinator-backfill.timer
	sd systemctl reset-failed
	return 0
}

# props UNIT PROPERTY...: "PROPERTY=value" lines, in that order.
props() {
	local u=$1 p
	shift
	for p; do
		echo "$p=$(sd systemctl show -P "$p" "$u")" || return
	done
}

# unit_is UNIT PROPERTY=VALUE...: systemctl show says so.
unit_is() {
	local u=$1 p
	shift
	for p; do
		[[ $(sd systemctl show -P "${p%%=*}" "$u") == "${p#*=}" ]] || return
	done
}

# journal_since T UNIT: what UNIT logged since T (epoch seconds).
journal_since() {
	sd journalctl -q -o cat --since "@$1" -u "$2"
}

@test "the units pass systemd-analyze verify, and systemd-analyze security rates them OK" {
	local u score
	need_systemd
	run -0 sd systemd-analyze verify --man=no /lib/systemd/system/tableinator.service \
		/lib/systemd/system/tableinator-backfill.service /lib/systemd/system/tableinator-backfill.timer
	assert_output ""
	for u in tableinator.service tableinator-backfill.service; do
		run -0 sd systemd-analyze security --no-pager "$u"
		score=$(sed -n "s/.*Overall exposure level for $u: \([0-9.]*\) .*/\1/p" <<<"$output")
		[[ -n $score ]] || flunk "no exposure level in: $output"
		note "systemd-analyze security $u: $score$(grep '^✗' <<<"$output" | awk '{ printf " %s", $2 }')"
		awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || flunk "exposure $score > 2.0: $output"
		run -0 sd systemd-analyze security --offline=yes --no-pager "/lib/systemd/system/$u"
		note "  offline: $(sed -n 's/.*Overall exposure level for [^:]*: //p' <<<"$output")"
	done
	run -0 sd systemd-analyze calendar --iterations=2 '*-*-* 03:30:00'
}

@test "tableinator.service under systemd: a dynamic user, state in /run/tableinator, healthy, loads; stop signals only the supervisor, which drains and exits 0" {
	local pid uid t0 tstop since
	need_systemd
	sd_reset
	sd_settings POSTGRES_BATCH_MODE=false
	since=$(sd date +%s)
	run -0 sd systemctl start tableinator.service
	publish_samples 100
	wait_until 60 counts_are "100 100 100 100"
	run -0 curl -s "http://127.0.0.1:$PORT/health"
	assert_equal healthy "$(jq -r .status <<<"$output")"
	pid=$(sd systemctl show -P MainPID tableinator.service)
	# A user of systemd's dynamic range, no capability, no new privilege.
	uid=$(sd awk '$1 == "Uid:" { print $2 }' "/proc/$pid/status")
	((uid >= 61184 && uid <= 65519)) || flunk "the service runs as uid $uid"
	run -0 sd grep -E '^(CapEff|CapBnd|NoNewPrivs):' "/proc/$pid/status"
	assert_output - <<-'EOF'
		CapEff:	0000000000000000
		CapBnd:	0000000000000000
		NoNewPrivs:	1
	EOF
	run -0 sd stat -c '%a %u %n' /run/tableinator /run/tableinator/tableinator.json
	assert_output - <<-EOF
		700 $uid /run/tableinator
		600 $uid /run/tableinator/tableinator.json
	EOF

	samples releases | tail -n +101 | publish releases
	wait_until 30 rows_at_least 420
	t0=$EPOCHREALTIME
	run -0 sd systemctl stop tableinator.service
	tstop=$(since "$t0" "$EPOCHREALTIME")
	note "systemctl stop: $tstop s"
	run -0 props tableinator.service Result ExecMainStatus
	assert_output - <<-'EOF'
		Result=success
		ExecMainStatus=0
	EOF
	run -0 journal_since "$since" tableinator.service
	assert_contains "$output" '"event":"🛑 Stop requested: draining the pipeline"'
	# tblload ended at the end of its input, not by a signal of its own.
	assert_contains "$output" '"event":"✅ Loading finished"'
	[[ $output != *'"event":"🛑 Loading stopped"'* ]] || flunk "tblload was signalled: KillMode is not mixed"
	assert_contains "$output" '"event":"👋 tableinator stopped"'
	releases_conserved 1000
}

@test "tableinator.service: a configuration error (78) is not restarted, another failure is" {
	local pid
	need_systemd
	sd_reset
	sd chmod 644 /usr/share/tableinator/log.bash
	sd_settings POSTGRES_BATCH_SIZE=many
	sd systemctl start tableinator.service || true
	wait_until 20 unit_is tableinator.service ActiveState=failed
	run -0 props tableinator.service ExecMainStatus NRestarts
	assert_output - <<-'EOF'
		ExecMainStatus=78
		NRestarts=0
	EOF
	# Past RestartSec: still not restarted.
	sleep 6
	run -0 props tableinator.service ActiveState NRestarts
	assert_output - <<-'EOF'
		ActiveState=failed
		NRestarts=0
	EOF

	# A failure: the supervisor cannot read its library (exit 70). Not a
	# SIGKILL: systemd in a container on this machine's cgroups never hears
	# that the killed unit's cgroup emptied, and would wait TimeoutStopSec.
	sd_reset
	sd_settings
	sd chmod 000 /usr/share/tableinator/log.bash
	sd systemctl start tableinator.service || true
	wait_until 30 unit_is tableinator.service NRestarts=1
	assert_equal ExecMainStatus=70 "$(props tableinator.service ExecMainStatus)"
	sd chmod 644 /usr/share/tableinator/log.bash
	wait_until 30 unit_is tableinator.service ActiveState=active SubState=running
	run -0 sd systemctl stop tableinator.service
}

@test "tableinator-backfill.service drains the queues until they are empty, loads what came and exits 0; its timer is set" {
	need_systemd
	sd_reset
	sd_settings
	publish_samples 200
	run -0 sd systemctl start tableinator-backfill.service
	run -0 props tableinator-backfill.service Result ExecMainStatus ActiveState
	assert_output - <<-'EOF'
		Result=success
		ExecMainStatus=0
		ActiveState=inactive
	EOF
	assert_equal "200 200 200 200" "$(table_counts)"
	assert_queues "0 0 0 0"
	# Its runtime directory (the ack FIFO) is gone with it.
	run sd test -e /run/tableinator-backfill
	assert_failure
	run -0 sd systemctl start tableinator-backfill.timer
	run -0 sd systemctl show -P NextElapseUSecRealtime tableinator-backfill.timer
	[[ $output == *" 03:"[34]* ]] || flunk "the timer's next run: '$output'"
	sd systemctl stop tableinator-backfill.timer
}
