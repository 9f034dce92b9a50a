# The start every script shares, sourced first (the script sets $here, its
# own directory, and finds this file in lib/ beside it or, installed, in
# share/tableinator):
# - the tools on PATH: TBL_BINDIR (set by the test harness), then beside
#   the script (installed), then build/bin of the source tree;
# - VERSION, the tools' (one VERSION file, compiled into them);
# - the JSON log functions of log.bash (log, die, json_str, now_iso).
# A script sets log_logger after sourcing this.

PATH="${TBL_BINDIR:+$TBL_BINDIR:}$here:$here/../build/bin:$PATH"
export LC_ALL=C.UTF-8
# shellcheck source=log.bash
source "${BASH_SOURCE[0]%/*}/log.bash" || exit 70
VERSION=$(tblhash --version 2>/dev/null) && VERSION=${VERSION##* } || VERSION=unknown
