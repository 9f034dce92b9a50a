# JSON log lines on stderr, in the form the C tools write (lib/log.c).
# Sourced by the scripts: set log_logger (tableinator.<name>) first, and call
# log_level "$LOG_LEVEL" to honour the variable.
#
# log LEVEL EVENT [KEY VALUE]...   values that look like numbers stay numbers
# die STATUS MESSAGE...            log an error with exit_status, then exit
# json_str STRING                  STRING as a JSON string
# now_iso                          the time as 2026-11-29T16:29:21.221847Z

declare -A level_rank=([DEBUG]=0 [INFO]=1 [WARNING]=2 [ERROR]=3 [CRITICAL]=4)
min_rank=1
log_logger=${log_logger:-tableinator}

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}

now_iso() {
	local t=$EPOCHREALTIME
	printf '%s.%sZ' "$(date -u -d "@${t%.*}" +%Y-%m-%dT%H:%M:%S)" "${t#*.}"
}

# log_level VALUE: the least level logged (empty: INFO); status 1 if VALUE is
# not a level.
log_level() {
	case ${1^^} in
	"") min_rank=1 ;;
	DEBUG | INFO | WARNING | ERROR | CRITICAL) min_rank=${level_rank[${1^^}]} ;;
	WARN) min_rank=2 ;;
	FATAL) min_rank=4 ;;	# as the tools accept it
	*) return 1 ;;
	esac
}

log() {
	local level=$1 event=$2 line k v
	shift 2
	[[ ${level_rank[${level^^}]} -ge $min_rank ]] || return 0
	line="{\"timestamp\":\"$(now_iso)\",\"level\":\"${level,,}\",\"logger\":\"$log_logger\",\"event\":$(json_str "$event")"
	while (($# >= 2)); do
		k=$1 v=$2
		shift 2
		if [[ $v =~ ^-?(0|[1-9][0-9]*)(\.[0-9]+)?$ ]]; then
			line+=",$(json_str "$k"):$v"
		else
			line+=",$(json_str "$k"):$(json_str "$v")"
		fi
	done
	printf '%s}\n' "$line" >&2
}

die() {
	local status=$1
	shift
	log ERROR "$*" exit_status "$status"
	exit "$status"
}
