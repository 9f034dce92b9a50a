# Fuzz targets (fuzz/README.md): one libFuzzer program per fuzz/<target>.c,
# built with clang, ASan and UBSan in $(FUZZ_BUILD), apart from the normal
# build, which never needs clang. Included by the Makefile.
#
#   make fuzz-build                 the targets and their seed corpora
#   make fuzz [FUZZ_SECONDS=N]      each target for N seconds (default 180)
#   make fuzz FUZZ_TARGETS='rows xrec'

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 180
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_COMPILE  = $(FUZZ_CC) $(CPPFLAGS) -DTBL_VERSION='"$(VERSION)"' -std=c11 -Wall -Wextra \
		-Werror -Wshadow -Wstrict-prototypes $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link

FUZZ_ALL     := $(sort $(basename $(notdir $(filter-out fuzz/common.c,$(wildcard fuzz/*.c)))))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_LIBOBJ  := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIBTBL  := $(FUZZ_BUILD)/libtbl.a

# What each target links besides its own file, fuzz/common.c and lib/: the
# tool sources it drives (a tool's main file is #included by the target
# with main renamed), and libraries.
fuzz_LIBS          = -ljson-c -lcrypto
fuzz_rows_SRC      = tblload/rows.c
fuzz_batch_SRC     = tblload/batch.c tblload/rows.c
fuzz_xrec_SRC      = tblxml/xrec.c
fuzz_xrec_LIBS     = -lexpat -lz
fuzz_amqurl_LIBS   = -lrabbitmq -lssl
fuzz_state_SRC     = $(filter-out tblhealth/tblhealth.c tblhealth/http.c,$(wildcard tblhealth/*.c))
fuzz_state_LIBS    = -lm

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_ALL:%=$(FUZZ_BUILD)/bin/%) $(FUZZ_BUILD)/seeds/.stamp

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) fuzz/run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(FUZZ_BUILD)/obj/%.o: %.c VERSION
	@mkdir -p $(@D)
	$(FUZZ_COMPILE) -MMD -MP -c -o $@ $<

$(FUZZ_LIBTBL): $(FUZZ_LIBOBJ)
	@rm -f $@
	$(AR) rcs $@ $^

define fuzz_rule
$(FUZZ_BUILD)/bin/$(1): $(FUZZ_BUILD)/obj/fuzz/$(1).o $(FUZZ_BUILD)/obj/fuzz/common.o \
    $$(fuzz_$(1)_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_LIBTBL)
	@mkdir -p $$(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(fuzz_$(1)_LIBS) $(fuzz_LIBS)
endef
$(foreach t,$(FUZZ_ALL),$(eval $(call fuzz_rule,$(t))))

# Seed corpora, from tests/fixtures (some through the tools just built).
$(FUZZ_BUILD)/seeds/.stamp: fuzz/seeds $(BUILD)/bin/tblhash $(BUILD)/bin/tblbatch \
    $(shell find tests/fixtures/messages tests/fixtures/xml tests/fixtures/record-shape -type f)
	fuzz/seeds $(FUZZ_BUILD)/seeds $(BUILD)/bin
	@touch $@

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
