#!/usr/bin/env bats
# The man pages in docs/man/: every page renders without a warning; every
# program has a page; the page of a tool names every long option of its
# --help, lists every variable the tool reads and nothing it does not, and
# gives every exit status the tool's own code uses; make install puts every
# program, script, page and SQL file where it belongs. No server.

load helpers/common
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=120

MAN=$TBL_ROOT/docs/man

# What the Makefile builds and installs, asked of make itself (the tools'
# module.mk files add to TOOLS and SCRIPTS).
make_var() {
	make -s -C "$TBL_ROOT" --no-print-directory \
		--eval 'tbl-print-%: ; @echo $($*)' "tbl-print-$1"
}

setup_file() {
	local tools
	tools=$(make_var TOOLS) || return
	# shellcheck disable=SC2086
	require_bin $tools
}

# The pages, one path a line; fails when there is none, so no test passes
# vacuously.
pages() {
	compgen -G "$MAN/*.1" || flunk "no page in docs/man"
}

# The program a page documents, as a path: a built tool in TBL_BINDIR or a
# script in scripts/.
program_of() {
	local name=${1##*/}
	name=${name%.1}
	if [[ -x $TBL_BINDIR/$name ]]; then
		echo "$TBL_BINDIR/$name"
	elif [[ -x $TBL_ROOT/scripts/$name ]]; then
		echo "$TBL_ROOT/scripts/$name"
	else
		return 1
	fi
}

# The lines of section NAME of a page's source.
section() {
	awk -v want=".Sh $2" '
		/^\.Sh / { on = ($0 == want); next }
		on' "$1"
}

# The page as plain text: wide lines, no overstriking.
render() {
	groff -mdoc -Tascii -rLL=300n -P-c -P-b -P-u "$1" 2>/dev/null
}

# The variables a page lists in ENVIRONMENT: the names on its ".It Ev"
# lines (".It Ev A , Ev B" or ".It Ev A , B").
page_vars() {
	section "$1" ENVIRONMENT | grep -E '^\.It (.* )?Ev ' | tr ' ' '\n' |
		grep -xE '[A-Z_][A-Z0-9_]{2,}' | sort -u
}

# The variables a compiled tool reads: by name in its own sources, and those
# that lib/ reads and that are linked into its binary.
tool_vars() {
	local tool=$1 v
	{
		cat "$TBL_ROOT/$tool"/*.c | env_reads
		for v in $(cat "$TBL_ROOT"/lib/*.c | env_reads); do
			strings -a "$TBL_BINDIR/$tool" | grep -qxF "$v" && echo "$v"
		done
	} | sort -u
}

# flunk_list HEADER ITEM...: fail with HEADER and one item a line.
flunk_list() {
	local header=$1
	shift
	printf '%s\n' "$header" "${@/#/  }" | flunk
}

# Names passed to getenv or an env_* helper, in C on stdin (env_secret
# takes two: NAME and NAME_FILE).
env_reads() {
	grep -oE '\b(getenv|env_str|env_ll|env_double|env_bool)\("[A-Za-z_][A-Za-z0-9_]*"|\benv_secret\("[A-Za-z_][A-Za-z0-9_]*", "[A-Za-z_][A-Za-z0-9_]*"' |
		sed -E 's/^[a-z_]+\("//; s/", "/\n/; s/"$//'
}

# Every variable a compiled tool of the project reads (what a script may
# pass on to the tools it runs).
all_tool_vars() {
	local t
	for t in $(make_var TOOLS); do
		tool_vars "$t"
	done | sort -u
}

# A shell script without its comments and usage text, for grepping names.
script_code() {
	awk '
		/^usage\(\) *\{/ { skip = 1 }
		skip { if (/^\}/) skip = 0; next }
		/^[ \t]*#/ { next }
		{ print }' "$1"
}

@test "every page renders with groff -mdoc -ww without a warning" {
	local p out n=0
	for p in $(pages); do
		out=$(groff -mdoc -ww -z "$p" 2>&1 || echo "groff exited $?")
		[[ -z $out ]] || flunk "${p#"$TBL_ROOT"/}: $out" || return
		n=$((n + 1))
	done
	((n >= 7)) || flunk "only $n pages in docs/man"
}

@test "every page passes mandoc -T lint at level warning (when mandoc is installed)" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local p out
	for p in $(pages); do
		# Exit status 2 or more with messages: they say what is wrong.
		out=$(mandoc -T lint -W warning "$p" 2>&1 || echo "mandoc exited $?")
		[[ -z $out ]] || flunk "$out" || return
	done
}

@test "every page is named after its file, in .Dt and in NAME" {
	local p name
	for p in $(pages); do
		name=${p##*/}
		name=${name%.1}
		grep -qx ".Dt ${name^^} 1" "$p" || flunk "$name.1: .Dt is not '${name^^} 1'" || return
		section "$p" NAME | grep -qx ".Nm $name" ||
			flunk "$name.1: NAME does not start with '.Nm $name'" || return
		grep -qx '.Os tableinator' "$p" || flunk "$name.1: .Os is not tableinator" || return
	done
}

@test "every program make installs has a page" {
	local prog missing=()
	for prog in $(make_var TOOLS) $(make_var SCRIPTS); do
		prog=${prog##*/}
		[[ -e $MAN/$prog.1 ]] || missing+=("$prog")
	done
	((${#missing[@]} == 0)) || flunk "no page in docs/man for: ${missing[*]}"
}

@test "every long option of a tool's --help is in its page" {
	local p prog help opt text missing=()
	for p in $(pages); do
		prog=$(program_of "$p") || flunk "${p##*/}: no such program in $TBL_BINDIR or scripts/" || return
		help=$("$prog" --help) || flunk "$prog --help exited $?" || return
		text=$(render "$p")
		for opt in $(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u); do
			grep -qF -- "$opt" <<<"$text" || missing+=("${p##*/}: $opt")
		done
	done
	((${#missing[@]} == 0)) || flunk_list "options of --help missing from the page:" "${missing[@]}"
}

@test "every long option a page's OPTIONS section describes is in the tool's --help" {
	local p prog help opt stale=()
	for p in $(pages); do
		prog=$(program_of "$p") || continue
		help=$("$prog" --help) || flunk "$prog --help exited $?" || return
		for opt in $(section "$p" OPTIONS | grep '^\.It ' | grep -oE 'Fl Fl [a-z][a-z0-9-]*' |
			sed 's/^Fl Fl /--/' | sort -u); do
			grep -qE -- "$opt([^a-z0-9-]|\$)" <<<"$help" || stale+=("${p##*/}: $opt")
		done
	done
	((${#stale[@]} == 0)) || flunk_list "options in a page that --help does not know:" "${stale[@]}"
}

@test "every variable in a page's ENVIRONMENT is read by the code" {
	# A tool's page: by that tool. A script's page: by the script, or by a
	# tool it may run, which inherits its environment.
	local p prog name v reads unread=() n=0
	for p in $(pages); do
		prog=$(program_of "$p") || continue
		name=${prog##*/}
		if [[ $prog == "$TBL_BINDIR"/* ]]; then
			reads=$(tool_vars "$name")
		else
			# A script, or the tools it runs with the environment it got.
			reads=$(script_code "$prog"; all_tool_vars)
		fi
		for v in $(page_vars "$p"); do
			n=$((n + 1))
			grep -qw -- "$v" <<<"$reads" || unread+=("$name.1: $v")
		done
	done
	((n >= 20)) || flunk "only $n variables listed in all the pages"
	((${#unread[@]} == 0)) || flunk_list "variables a page lists that its tool does not read:" "${unread[@]}"
}

@test "every variable a tool reads is in its page's ENVIRONMENT" {
	local p prog name v listed reads missing=()
	for p in $(pages); do
		prog=$(program_of "$p") || continue
		name=${prog##*/}
		listed=$(page_vars "$p")
		if [[ $prog == "$TBL_BINDIR"/* ]]; then
			reads=$(tool_vars "$name")
		else
			# The supervisor's checked variables: need NAME, int_var NAME,
			# secret NAME ...
			reads=$(script_code "$prog" | sed -nE 's/^[ \t]*(need|int_var|secret) ([A-Z_][A-Z0-9_]*).*/\2/p')
		fi
		for v in $reads; do
			grep -qx -- "$v" <<<"$listed" || missing+=("$name.1: $v")
		done
	done
	((${#missing[@]} == 0)) || flunk_list "variables read but not in the page's ENVIRONMENT:" "${missing[@]}"
}

@test "every exit status a tool's own code uses is in its page's EXIT STATUS" {
	local p prog name st statuses listed missing=()
	for p in $(pages); do
		prog=$(program_of "$p") || continue
		name=${prog##*/}
		if [[ $prog == "$TBL_BINDIR"/* ]]; then
			# EXIT_* names to numbers, from lib/util.h.
			statuses=$(grep -ohE '\bEXIT_[A-Z]+\b' "$TBL_ROOT/$name"/*.c | sort -u |
				while read -r st; do
					sed -nE "s/^[ \t]*$st = ([0-9]+).*/\1/p" "$TBL_ROOT/lib/util.h"
				done)
			[[ -n $statuses ]] || flunk "$name: no EXIT_* in its sources" || return
		else
			statuses=$(script_code "$prog" | grep -oE '\b(die|exit) [0-9]+' | grep -oE '[0-9]+')
		fi
		listed=$(section "$p" 'EXIT STATUS' | sed -n 's/^\.It \([0-9][0-9]*\)$/\1/p')
		for st in $(sort -un <<<"$statuses"); do
			grep -qx -- "$st" <<<"$listed" || missing+=("$name.1: $st")
		done
	done
	((${#missing[@]} == 0)) || flunk_list "exit statuses missing from EXIT STATUS:" "${missing[@]}"
}

@test "make install puts every program, script, page and SQL file in DESTDIR" {
	local dest=$BATS_TEST_TMPDIR/dest prefix=/opt/tableinator build f want got mode
	[[ $TBL_BINDIR == */bin ]] || skip "TBL_BINDIR is not a BUILD/bin directory"
	build=${TBL_BINDIR%/bin}
	# -o all: install what is built, never build (TBL_BINDIR may be an ASan build).
	run make -s -C "$TBL_ROOT" --no-print-directory -o all BUILD="$build" \
		PREFIX="$prefix" DESTDIR="$dest" install
	assert_success

	# bin/ and share/man/man1/ hold exactly these; share/tableinator/ holds
	# the SQL files and may hold other support files of the scripts.
	want=$(
		for f in $(make_var TOOLS) $(make_var SCRIPTS); do echo "bin/${f##*/} 755"; done
		for f in "$MAN"/*.1; do echo "share/man/man1/${f##*/} 644"; done
		for f in "$TBL_ROOT"/sql/*.sql; do echo "share/tableinator/${f##*/} 644"; done
	)
	want=$(sort <<<"$want")
	# What is known today must be among them, so a broken list cannot pass.
	for f in bin/amqp-drain bin/amqp-fill bin/tableinator bin/tblbatch bin/tblhash \
		bin/tblload bin/tblxml share/man/man1/amqp-drain.1 share/man/man1/amqp-fill.1 \
		share/man/man1/tableinator.1 share/man/man1/tblbatch.1 share/man/man1/tblhash.1 \
		share/man/man1/tblload.1 share/man/man1/tblxml.1 share/tableinator/schema.sql \
		share/tableinator/queries.sql; do
		grep -q "^$f " <<<"$want" || flunk "expected $f to be installed" || return
	done
	got=$(cd "$dest$prefix" && find . -type f -printf '%P %m\n' | sort)
	assert_equal "$(grep -v '^share/tableinator/' <<<"$want")" \
		"$(grep -v '^share/tableinator/' <<<"$got")"
	for f in $(grep '^share/tableinator/' <<<"$want" | tr ' ' ':'); do
		grep -qx "${f/:/ }" <<<"$got" || flunk "not installed (or not mode 644): ${f/:/ }" || return
	done
	[[ -z $(find "$dest" -path "$dest$prefix" -prune -o -type f -print) ]] ||
		flunk "installed outside PREFIX: $(find "$dest" -path "$dest$prefix" -prune -o -type f -print)"

	for f in "$MAN"/*.1; do
		cmp -s "$f" "$dest$prefix/share/man/man1/${f##*/}" ||
			flunk "${f##*/} differs from its installed copy" || return
	done
	for f in "$TBL_ROOT"/sql/*.sql; do
		cmp -s "$f" "$dest$prefix/share/tableinator/${f##*/}" ||
			flunk "${f##*/} differs from its installed copy" || return
	done
	# man finds every installed program's page there, and it renders.
	command -v man >/dev/null || return 0
	for f in "$dest$prefix"/bin/*; do
		f=${f##*/}
		run -0 man -M "$dest$prefix/share/man" -w "$f"
		assert_equal "$dest$prefix/share/man/man1/$f.1" "$output"
		run -0 env MANPAGER=cat MANWIDTH=80 man -M "$dest$prefix/share/man" "$f"
		assert_contains "$output" "NAME"
	done
}
