# Podman for the packaging suite (loaded by tests/packaging.bats after
# helpers/common): a storage and a configuration private to this checkout,
# and the Debian base image made with debootstrap when it is missing.
#
# pm_setup              write the configuration, export CONTAINERS_CONF,
#                       CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF
# pm_base [IMAGE]       make IMAGE (default localhost/debian:bookworm-slim)
#                       from the Debian mirror apt uses, unless it exists
# pm_service_start SOCK `podman system service` on a socket (for docker-compose),
#                       its pid in PM_SERVICE; pm_service_stop ends it
# podman ARGS...        podman on that storage (the variables above do it)
#
# Why a storage of our own, in build/podman: the images and their layers stay
# between runs of the suite in one checkout (a warm run takes seconds, not a
# minute), other checkouts and the machine's own podman storage are never
# touched (no name of ours can clash with another's), and `make clean` or
# `rm -rf build` removes it all. A fresh clone (CI) builds everything once.
#
# Why the configuration: on this kind of machine crun refuses the hybrid
# cgroups (runc does not), podman's default ulimits are above the hard limits
# (no container starts), there is no systemd (cgroupfs, events to a file) and
# no image registry (no short name is ever looked up on one). Every container
# uses the host's network: the tests reach the throwaway servers on 127.0.0.1
# and no bridge, address or firewall rule is made.

export PM_DIR=${PM_DIR:-$TBL_ROOT/build/podman}
export PM_BASE=localhost/debian:bookworm-slim

pm_setup() {
	local hn hu pidmax boot
	mkdir -p "$PM_DIR/storage" "$PM_DIR/run" "$PM_DIR/networks" || return
	chmod 700 "$PM_DIR" || return
	# The run directory holds what a boot forgets (podman expects it on a
	# tmpfs): after a reboot it is stale, and podman, finding it empty,
	# refreshes the state of its containers as it does after any boot.
	boot=$(cat /proc/sys/kernel/random/boot_id) || return
	if [[ $(cat "$PM_DIR/boot_id" 2>/dev/null) != "$boot" ]]; then
		rm -rf "$PM_DIR/run" && mkdir "$PM_DIR/run" &&
			echo "$boot" >"$PM_DIR/boot_id" || return
	fi
	hn=$(ulimit -Hn) hu=$(ulimit -Hu)
	read -r pidmax </proc/sys/kernel/pid_max || return
	[[ $hn == unlimited ]] && hn=1048576
	[[ $hu == unlimited ]] || ((hu > pidmax)) && hu=$pidmax
	cat >"$PM_DIR/containers.conf" <<-EOF || return
		[containers]
		netns = "host"
		default_ulimits = ["nofile=$hn:$hn", "nproc=$hu:$hu"]
		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		events_logfile_path = "$PM_DIR/run/events.log"
		tmp_dir = "$PM_DIR/run/libpod"
		[network]
		network_config_dir = "$PM_DIR/networks"
	EOF
	cat >"$PM_DIR/storage.conf" <<-EOF || return
		[storage]
		driver = "overlay"
		graphroot = "$PM_DIR/storage"
		runroot = "$PM_DIR/run/storage"
	EOF
	cat >"$PM_DIR/registries.conf" <<-EOF || return
		unqualified-search-registries = []
		short-name-mode = "disabled"
	EOF
	export CONTAINERS_CONF=$PM_DIR/containers.conf
	export CONTAINERS_STORAGE_CONF=$PM_DIR/storage.conf
	export CONTAINERS_REGISTRIES_CONF=$PM_DIR/registries.conf
}

# apt_sources: the host's Debian sources for its own release, as deb822
# stanzas (one-line and deb822 files both read); other repositories (a
# vendor's, a language's) are left out, as their keys are not in the image.
apt_sources() {
	local codename f
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME") || return
	[[ -n $codename ]] || return
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
		[[ -f $f ]] || continue
		case $f in
		*.list) awk '$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
				printf "%s\t%s\t", $i, $(i + 1)
				for (j = i + 2; j <= NF; j++) printf "%s%s", $j, (j < NF ? " " : "\n")
			}' "$f" ;;
		*.sources) awk '
				function flush() {
					if (u != "" && s != "" && t)
						printf "%s\t%s\t%s\n", u, s, k
					u = s = k = ""; t = 1
				}
				BEGIN { t = 1 }
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { flush(); next }
				{ key = tolower($1); $1 = ""; v = substr($0, 2) }
				key == "types:" { t = (" " v " " ~ / deb /) }
				key == "uris:" { u = v }
				key == "suites:" { s = v }
				key == "components:" { k = v }
				key == "enabled:" && tolower(v) == "no" { t = 0 }
				END { flush() }' "$f" ;;
		esac
	done | awk -F'\t' -v c="$codename" '{
		n = split($2, s, " "); keep = ""
		for (i = 1; i <= n; i++)
			if (s[i] ~ ("^" c "(-updates|-security|-backports)?$"))
				keep = keep (keep == "" ? "" : " ") s[i]
		if (keep == "")
			next
		split($1, u, " ")
		printf "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", u[1], keep, $3
		printf "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
	}'
}

# pm_base [IMAGE]: the base image, as a registry would give debian:bookworm-slim:
# debootstrap's minbase from the host's mirror, apt configured as the host's,
# without apt's lists, documentation and locales (and dpkg told to leave them
# out of later installs too).
pm_base() {
	local image=${1:-$PM_BASE} root mirror sources
	podman image exists "$image" && return 0
	sources=$(apt_sources) || return
	mirror=$(awk '$1 == "URIs:" { print $2; exit }' <<<"$sources")
	[[ -n $mirror ]] || { echo "pm_base: no Debian mirror in apt's sources" >&2; return 1; }
	root=$(mktemp -d "${TBL_TEST_TMP:-/tmp}/base.XXXXXX") || return
	if ! debootstrap --variant=minbase "$(. /etc/os-release && echo "$VERSION_CODENAME")" \
		"$root" "$mirror" >"$root.log" 2>&1; then
		tail -n 20 "$root.log" >&2
		rm -rf "$root"
		return 1
	fi
	rm -f "$root/etc/apt/sources.list"
	printf '%s\n' "$sources" >"$root/etc/apt/sources.list.d/debian.sources"
	cp -p /etc/apt/apt.conf.d/* "$root/etc/apt/apt.conf.d/" 2>/dev/null
	[[ -e /etc/apt/apt.conf ]] && cp -p /etc/apt/apt.conf "$root/etc/apt/"
	cat >"$root/etc/dpkg/dpkg.cfg.d/excludes" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
		path-exclude /usr/share/lintian/*
	EOF
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
		"$root"/var/log/* "$root"/usr/share/info/* "$root"/usr/share/man/* "$root"/tmp/*
	find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	tar -C "$root" -c . | podman import --change CMD=/bin/bash - "$image" >/dev/null
	local rc=$?
	rm -rf "$root" "$root.log"
	return $rc
}

# The service ends by itself after 5 minutes without a request, should
# the test that started it be killed before it could stop it.
pm_service_start() {
	setsid podman system service --time=300 "unix://$1" \
		</dev/null >"${BATS_TEST_TMPDIR:-/tmp}/podman-service.log" 2>&1 3>&- &
	PM_SERVICE=$!
	wait_until 30 test -S "$1"
}

pm_service_stop() {
	[[ -n ${PM_SERVICE-} ]] || return 0
	kill -TERM "$PM_SERVICE" 2>/dev/null && wait "$PM_SERVICE" 2>/dev/null
	PM_SERVICE=
	return 0
}
