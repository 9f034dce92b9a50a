# tableinator: a pipeline of small tools that keeps Discogs records in PostgreSQL.
# Each tool lives in its own directory with a module.mk naming it and its libraries;
# code shared by the tools lives in lib/ and is linked as a static archive.

CC       ?= gcc
CFLAGS   ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Ilib -I/usr/include/postgresql
WARN      = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := $(shell cat VERSION)
COMPILE   = $(CC) $(CPPFLAGS) -DTBL_VERSION='"$(VERSION)"' $(WARN) $(CFLAGS)

TOOLS    :=
SCRIPTS  :=
include $(sort $(wildcard */module.mk))

LIB_SRC  := $(sort $(wildcard lib/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIBTBL   := $(BUILD)/libtbl.a
BINS     := $(TOOLS:%=$(BUILD)/bin/%)
# Tests of lib/ functions that no tool can reach with the input that shows a
# bug (tests/unit/*.c, one program each, exit 0 when right; run by lib.bats).
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/test/%,$(sort $(wildcard tests/unit/*.c)))
MANS     := $(sort $(wildcard docs/man/*.1))

.PHONY: all check check-cluster check-packaging deps test test-asan asan bench bench-scale demo demo-stop install \
	install-systemd image deb clean
all: $(BINS) $(UNIT_BINS)

# Every object depends on VERSION: --version and the AMQP client properties
# carry it, and a new version must not leave an old string behind.
$(BUILD)/obj/%.o: %.c VERSION
	@mkdir -p $(@D)
	$(COMPILE) -MMD -MP -c -o $@ $<

$(LIBTBL): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# One link rule per tool: its own objects, the shared archive, its libraries.
define tool_rule
$(BUILD)/bin/$(1): $$(patsubst %.c,$(BUILD)/obj/%.o,$$(sort $$(wildcard $(1)/*.c))) $$($(subst -,_,$(1))_EXTRA) $$(LIBTBL)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$($(subst -,_,$(1))_LIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

$(BUILD)/test/%: tests/unit/%.c $(LIBTBL) VERSION
	@mkdir -p $(@D)
	$(COMPILE) -o $@ $< $(LIBTBL) -lz -ljson-c -lcrypto -lm

# Files embedded into a tool as a C string (see tblload's schema).
$(BUILD)/gen/%_sql.c: sql/%.sql
	@mkdir -p $(@D)
	{ echo 'const char $*_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(WARN) -Wno-missing-variable-declarations $(CFLAGS) -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

deps:
	scripts/install-deps

# make check: install what is missing, build (the fuzz targets and the ASan
# and UBSan build too), then run every suite (fuzz.bats: each fuzz target
# briefly) and the server-less C tools' suites again against the sanitizer
# build, in groups that run at the same time (tests/check). Not the two
# slow targets below: with them, make check takes 45 minutes on two cores.
check: deps all fuzz-build asan
	tests/check $(BUILD)/bin build-asan/bin

# make check-cluster: the failover suites (tests/e2e-cluster-*.bats, a
# RabbitMQ cluster or a PostgreSQL primary with its standby of their own,
# nodes killed mid-load) and cluster-harness: about 15 minutes.
check-cluster: deps all
	TBL_SUITES=cluster tests/run $(BUILD)/bin

# make check-packaging: the image, compose, the systemd units and the
# Debian package, each built and run (tests/packaging.bats; root, podman):
# about 17 minutes from empty storage.
check-packaging: deps all
	tests/run $(BUILD)/bin packaging

test: all
	tests/run $(BUILD)/bin

test-asan: asan
	TBL_SUITES=unit tests/run build-asan/bin

asan:
	$(MAKE) BUILD=build-asan CFLAGS='-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer' all

# make bench: every figure of the README's table, from one run (minutes).
bench: all $(BUILD)/bench/jsonc-parse
	bench/run $(BUILD)/bin

# make bench-scale: 2,000,000 releases in ten chunks, the rate of each (an
# hour or so, 7 GB of disk); not part of make check.
bench-scale: all
	bench/scale $(BUILD)/bin

$(BUILD)/bench/jsonc-parse: bench/jsonc-parse.c $(LIBTBL)
	@mkdir -p $(@D)
	$(COMPILE) -o $@ $^ -ljson-c

demo: deps all
	scripts/demo start

demo-stop:
	scripts/demo stop

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/tableinator
	install -m 755 $(BINS) $(SCRIPTS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 sql/*.sql $(DESTDIR)$(PREFIX)/share/tableinator
	install -m 644 scripts/lib/common.bash scripts/lib/log.bash $(DESTDIR)$(PREFIX)/share/tableinator
	$(if $(MANS),install -m 644 $(MANS) $(DESTDIR)$(PREFIX)/share/man/man1)

# The systemd units and the file of settings they read, apart from install so
# that a plain install stays where it was. Settings already there are kept.
SYSCONFDIR     ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS          := $(sort $(wildcard dist/systemd/*.in))

install-systemd:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	for u in $(UNITS); do \
		n=$${u##*/}; \
		sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $$u \
			>$(DESTDIR)$(SYSTEMDUNITDIR)/$${n%.in} && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${n%.in} || exit; \
	done
	test -e $(DESTDIR)$(SYSCONFDIR)/default/tableinator || \
		install -m 600 dist/default/tableinator $(DESTDIR)$(SYSCONFDIR)/default/tableinator

# The container image (Containerfile), with podman, or docker without it;
# --format docker keeps the HEALTHCHECK, the host's network spares a bridge.
# Tagged VERSION and latest; IMAGE_BASE picks another base than
# debian:bookworm-slim, IMAGE_OPTS adds options.
ENGINE     ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
IMAGE      ?= localhost/tableinator
IMAGE_BASE ?=
IMAGE_OPTS ?=

image:
	$(ENGINE) build $(if $(filter podman,$(notdir $(ENGINE))),--format docker) \
		--network host --build-arg VERSION=$(VERSION) \
		$(if $(IMAGE_BASE),--build-arg BASE=$(IMAGE_BASE)) $(IMAGE_OPTS) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest -f Containerfile .

# The Debian package, built from a copy of the tree (dpkg-buildpackage
# cleans what it builds in, and this tree's build/ must stay) into
# $(BUILD)/deb, with none of this make's settings.
deb:
	rm -rf $(BUILD)/deb
	mkdir -p $(BUILD)/deb/tableinator-$(VERSION)
	tar -c --exclude-vcs --exclude=./build --exclude='./build-*' --exclude=./var . | \
		tar -x -C $(BUILD)/deb/tableinator-$(VERSION)
	cd $(BUILD)/deb/tableinator-$(VERSION) && \
		env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b
	rm -rf $(BUILD)/deb/tableinator-$(VERSION)

clean:
	rm -rf build build-asan build-fuzz

include fuzz/fuzz.mk

.SECONDARY:
