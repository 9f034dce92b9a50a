# JSON log lines on stderr, in the form the C tools write (lib/log.c).
# Sourced by the scripts: set log_logger (tableinator.<name>) first, and call
# log_level_from_env to honour LOG_LEVEL.
#
# log LEVEL EVENT [KEY VALUE]...   values that look like numbers stay numbers
# die STATUS MESSAGE...            log an error with exit_status, then exit
# json_str VAR STRING              STRING as a JSON string, in VAR
# now_iso VAR                      the time as 2026-11-29T16:29:21.221847Z, in VAR
#
# Lines go to log_fd, a copy of stderr made here: a script may then send its
# own stderr elsewhere (the supervisor does, so that bash's reports on its
# children never mix with the JSON). No helper runs a command substitution:
# bash 5.2 can lose a signal that arrives while it parses one, and with it a
# stop request; results come back in variables.

exec {log_fd}>&2
declare -A level_rank=([DEBUG]=0 [INFO]=1 [WARNING]=2 [ERROR]=3 [CRITICAL]=4)
min_rank=1
log_logger=${log_logger:-tableinator}

# Every control character is escaped (JSON allows none raw); bash strings
# hold no NUL, so U+0001 to U+001F is the whole set.
json_str() {
	local _s=$2 _i _o _c _u
	_s=${_s//\\/\\\\}
	_s=${_s//\"/\\\"}
	if [[ $_s == *[$'\001'-$'\037']* ]]; then
		_s=${_s//$'\n'/\\n}
		_s=${_s//$'\r'/\\r}
		_s=${_s//$'\t'/\\t}
		_s=${_s//$'\b'/\\b}
		_s=${_s//$'\f'/\\f}
		for ((_i = 1; _i < 32; _i++)); do
			printf -v _o %03o "$_i"
			printf -v _c "\\$_o"
			printf -v _u '\\u%04x' "$_i"
			_s=${_s//"$_c"/$_u}
		done
	fi
	printf -v "$1" '"%s"' "$_s"
}

now_iso() {
	local _t=$EPOCHREALTIME
	TZ=UTC printf -v "$1" '%(%Y-%m-%dT%H:%M:%S)T.%sZ' "${_t%.*}" "${_t#*.}"
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

# log_level_from_env: log_level "$LOG_LEVEL"; a value that is not a level
# exits 78 naming the variable.
log_level_from_env() {
	log_level "${LOG_LEVEL-}" ||
		die 78 "LOG_LEVEL: '$LOG_LEVEL' is not DEBUG, INFO, WARNING, ERROR or CRITICAL"
}

log() {
	local level=$1 event=$2 line k v ts js
	shift 2
	[[ ${level_rank[${level^^}]} -ge $min_rank ]] || return 0
	now_iso ts
	json_str js "$event"
	line="{\"timestamp\":\"$ts\",\"level\":\"${level,,}\",\"logger\":\"$log_logger\",\"event\":$js"
	while (($# >= 2)); do
		k=$1 v=$2
		shift 2
		json_str js "$k"
		line+=",$js:"
		if [[ $v =~ ^-?(0|[1-9][0-9]*)(\.[0-9]+)?$ ]]; then
			line+=$v
		else
			json_str js "$v"
			line+=$js
		fi
	done
	printf '%s}\n' "$line" >&"$log_fd"
}

die() {
	local status=$1
	shift
	log ERROR "$*" exit_status "$status"
	exit "$status"
}
