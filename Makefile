# wmesh: a data mesh over MQTT. `make demo` and `make check` are all a newcomer needs.
# The public targets first install missing Debian packages (scripts/deps.sh), then run the
# real work in a sub-make so pkg-config sees the freshly installed libraries.

CC ?= cc
BUILD ?= build
# The version, stated once in VERSION: wmesh --version, the User-Agent, the man page, the package.
VERSION := $(shell cat VERSION 2>/dev/null)
ifeq ($(VERSION),)
$(error VERSION is missing or empty)
endif
PKGS := libssl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wconversion -Wformat=2 -Wstrict-prototypes \
        -Wmissing-prototypes -Wno-sign-conversion
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT ?= -O2 -g
# `make torture`: allocation-failure injection (tests/torture/README.md), an ASan + UBSan build
# in build/torture whose own calls to these functions go through tests/torture/failalloc.c.
# Frame pointers and no sibling calls keep each call's return address in its caller.
TORTURE_WRAP := malloc calloc realloc strdup strndup getline fopen fdopendir EVP_MD_CTX_new \
                SSL_CTX_new SSL_new
ifeq ($(TORTURE),1)
OPT := -O1 -g
endif
VERSION_DEF := -DWMESH_VERSION='"$(VERSION)"'
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(VERSION_DEF) $(OPT) $(WARN) $(PKG_CFLAGS) -Isrc -MMD -MP \
              $(CPPFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(LDFLAGS)
ifeq ($(SANITIZER),address)
BUILD := build/asan
CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_ALL += -fsanitize=address,undefined
endif
# ThreadSanitizer: the peer's threads (HTTP server, syncers, spares, hasher, retention) against
# the loop. Reports end the process (TSAN_OPTIONS in tests/integration/lib.sh and below).
ifeq ($(SANITIZER),thread)
BUILD := build/tsan
CFLAGS_ALL += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS_ALL += -fsanitize=thread
endif

ifeq ($(TORTURE),1)
override BUILD := build/torture
CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-optimize-sibling-calls \
              -fno-sanitize-recover=undefined
LDFLAGS_ALL += -fsanitize=address,undefined
PROG_EXTRA := $(BUILD)/tests/torture/failalloc.o
PROG_LDFLAGS := $(foreach f,$(TORTURE_WRAP),-Wl,--wrap=$(f))
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

CORE_SRC := $(wildcard src/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LIB := $(BUILD)/libwmesh.a
PROG := $(BUILD)/wmesh

.PHONY: all check demo bench fuzz deps deps-extra _all _check _demo _bench _fuzz unit integration \
        torture _torture \
        fuzz-smoke clean format format-check install

all demo: deps
	@$(MAKE) --no-print-directory _$@

# Tests, benchmarks and fuzzing also want clang's sanitizer runtimes, nginx and valgrind.
check bench fuzz: deps-extra
	@$(MAKE) --no-print-directory _$@

deps:
	@sh scripts/deps.sh

deps-extra:
	@sh scripts/deps.sh --extra

_all: $(PROG)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

# A new version rebuilds everything: a stale object would state the old one.
$(CORE_OBJ) $(CLI_OBJ): VERSION

$(LIB): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(PROG): $(CLI_OBJ) $(LIB) $(PROG_EXTRA)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $(PROG_LDFLAGS) -o $@ $(CLI_OBJ) $(PROG_EXTRA) $(LIB) $(PKG_LIBS) -lpthread

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(LIB) $(PKG_LIBS) -lpthread
# What each test includes beyond test.h (fake_broker.h, loopback.h, ...), from -MMD.
-include $(UNIT_BIN:=.d)

# Test helpers: tests/tools/<name>.c become programs, tests/tools/shim_<name>.c LD_PRELOAD shims.
TOOL_SRC := $(filter-out tests/tools/shim_%.c,$(wildcard tests/tools/*.c))
SHIM_SRC := $(wildcard tests/tools/shim_*.c)
TOOLS := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%) $(SHIM_SRC:tests/tools/%.c=$(BUILD)/tools/%.so)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< -lpthread

$(BUILD)/tools/%.so: tests/tools/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -fPIC -shared -o $@ $< -ldl

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# TESTS="30 34" runs some of the integration tests; TEST_JOBS=2 runs two at once
# (tests/integration/README.md).
TEST_JOBS ?= 1

integration: $(PROG) $(TOOLS)
	@WMESH=$(abspath $(PROG)) WMESH_TOOLS=$(abspath $(BUILD)/tools) TEST_JOBS=$(TEST_JOBS) \
	    bash tests/integration/run.sh $(TESTS)

_check: $(PROG) unit integration fuzz-smoke
	@$(MAKE) --no-print-directory TORTURE=1 _torture TORTURE_SAMPLE=$(TORTURE_CHECK_SAMPLE)

_demo: $(PROG)
	$(PROG) demo

# A mesh of MESH_N hosts (network namespaces, as root) under topologies and faults; not part of
# check: tests/mesh/README.md. MESH_N=5 MESH_QUICK=1 runs in under a minute.
.PHONY: meshtest _meshtest
meshtest: deps
	@$(MAKE) --no-print-directory _meshtest

_meshtest: $(PROG)
	@WMESH=$(abspath $(PROG)) bash tests/mesh/meshtest.sh

# Allocation-failure torture (tests/torture/README.md): build/torture/wmesh (ASan + UBSan, its
# allocations through tests/torture/failalloc.c) relays A -> B -> C with each allocation site B
# reaches failing once in turn. `make torture TORTURE_SAMPLE=24` runs a seeded sample of cases
# (TORTURE_SEED=S repeats one); `make check` runs such a sample.
TORTURE_SAMPLE ?= all
TORTURE_CHECK_SAMPLE ?= 24

# tests/torture/torture_<name>.c: in-process tortures of one module, each allocation failing.
TORTURE_TESTS := $(patsubst tests/torture/%.c,$(BUILD)/tests/torture/%,\
                   $(wildcard tests/torture/torture_*.c))

torture: deps-extra
	@$(MAKE) --no-print-directory TORTURE=1 _torture

$(BUILD)/tests/torture/torture_%: tests/torture/torture_%.c tests/torture/failalloc.h $(LIB) \
                                  $(PROG_EXTRA)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) $(PROG_LDFLAGS) -o $@ $< $(PROG_EXTRA) \
	    $(LIB) $(PKG_LIBS) -lpthread

_torture: $(PROG) $(TOOLS) $(TORTURE_TESTS)
	@for t in $(TORTURE_TESTS); do echo "== $$t"; $$t >$$t.log 2>&1 || \
	    { cat $$t.log; exit 1; }; tail -n 1 $$t.log; done
	@WMESH=$(abspath $(PROG)) WMESH_TOOLS=$(abspath $(BUILD)/tools) \
	    TORTURE_SAMPLE=$(TORTURE_SAMPLE) bash tests/torture/alloc-failure.sh

# Benchmarks (bench/README.md): bench/<name>.c become helper programs linked with the core
# library. `make bench BENCH_SCALE=small` is the fast version; `make bench BENCH=relay` one scenario.
BENCH_SCALE ?= full
BENCH_TOOLS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(PKG_LIBS) -lpthread

.PHONY: bench-tools
bench-tools: $(BENCH_TOOLS)
-include $(BENCH_TOOLS:=.d)

_bench: $(PROG) bench-tools $(BUILD)/tools/delayproxy
	@WMESH=$(abspath $(PROG)) WMESH_BENCH_TOOLS=$(abspath $(BUILD)/bench) \
	    WMESH_TOOLS=$(abspath $(BUILD)/tools) \
	    BENCH_SCALE=$(BENCH_SCALE) sh bench/run.sh $(BENCH)

# libFuzzer harnesses (tests/fuzz/fuzz_<name>.c, seeds in tests/fuzz/corpus/<name>/), built with
# clang over the core sources. `make fuzz FUZZ_TIME=600` fuzzes longer; check runs a short pass.
FUZZ_TIME ?= 60
comma := ,
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE $(VERSION_DEF) -g -O1 -Isrc $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

# The core is compiled once for all harnesses (instrumented, without libFuzzer's main): twelve
# harnesses each compiling every source took five minutes of every `make check`.
FUZZ_CORE_OBJ := $(CORE_SRC:src/%.c=build/fuzz/obj/%.o)
FUZZ_CORE_LIB := build/fuzz/libwmesh-fuzz.a

build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h) VERSION
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)clang $(subst -fsanitize=fuzzer$(comma),-fsanitize=fuzzer-no-link$(comma),$(FUZZ_CFLAGS)) \
	    -c -o $@ $<

$(FUZZ_CORE_LIB): $(FUZZ_CORE_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/fuzz/%: tests/fuzz/%.c $(FUZZ_CORE_LIB) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_CORE_LIB) $(PKG_LIBS) -lpthread

_fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f##*/fuzz_}; mkdir -p build/fuzz/corpus-$$n; \
	  echo "== $$f for $(FUZZ_TIME) s"; \
	  $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 build/fuzz/corpus-$$n \
	      tests/fuzz/corpus/$$n 2>build/fuzz/$$n.log || { tail -50 build/fuzz/$$n.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|stat::new_units_added" build/fuzz/$$n.log; \
	done

# A short fuzzing pass for `make check` when clang's fuzzer runtime is present.
fuzz-smoke:
	@if command -v clang >/dev/null && [ -d /usr/lib/llvm-14/lib/clang ] && \
	    ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory _fuzz FUZZ_TIME=$${FUZZ_SMOKE_TIME:-15}; \
	else echo "fuzz-smoke: skipped (clang or libclang-rt-14-dev missing)"; fi

FORMAT_SRC := src/*.[ch] src/cli/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/tools/*.c \
              tests/torture/*.c bench/*.c

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

# `make install PREFIX=/usr DESTDIR=/tmp/root`: the program, wmesh(1) (gzipped, the version in
# its .TH line), the systemd
# template unit (its ExecStart rewritten to $(PREFIX)/bin) and the example configurations.
# Builds the program if needed; plain `install`, no owner change, so DESTDIR needs no root.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/wmesh
INSTALL ?= install
EXAMPLES := examples/origin.conf examples/relay.conf examples/wis2-cache.conf \
            examples/credentials.conf examples/mosquitto-peer.conf examples/acl \
            examples/wis2-broker.conf examples/wis2-broker.acl
UNIT := wmesh-peer@.service

.PHONY: uninstall
install: $(PROG)
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(UNITDIR)" \
	    "$(DESTDIR)$(DOCDIR)/examples"
	$(INSTALL) -m 0755 $(PROG) "$(DESTDIR)$(BINDIR)/wmesh"
	sed '/^\.TH /s/ wmesh "User Commands"$$/ "wmesh $(VERSION)" "User Commands"/' docs/wmesh.1 | \
	    gzip -9 -n >"$(DESTDIR)$(MANDIR)/man1/wmesh.1.gz.tmp"
	chmod 0644 "$(DESTDIR)$(MANDIR)/man1/wmesh.1.gz.tmp"
	mv -f "$(DESTDIR)$(MANDIR)/man1/wmesh.1.gz.tmp" "$(DESTDIR)$(MANDIR)/man1/wmesh.1.gz"
	sed 's|^ExecStart=/usr/bin/|ExecStart=$(BINDIR)/|' packaging/$(UNIT) \
	    >"$(DESTDIR)$(UNITDIR)/$(UNIT).tmp"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/$(UNIT).tmp"
	mv -f "$(DESTDIR)$(UNITDIR)/$(UNIT).tmp" "$(DESTDIR)$(UNITDIR)/$(UNIT)"
	$(INSTALL) -m 0644 $(EXAMPLES) "$(DESTDIR)$(DOCDIR)/examples/"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/wmesh $(DESTDIR)$(MANDIR)/man1/wmesh.1.gz \
	    $(DESTDIR)$(UNITDIR)/$(UNIT) $(addprefix $(DESTDIR)$(DOCDIR)/,$(EXAMPLES))
	rmdir "$(DESTDIR)$(DOCDIR)/examples" "$(DESTDIR)$(DOCDIR)" 2>/dev/null || true

# `make deb`: the Debian package (debian/), by dpkg-buildpackage -us -uc -b, its objects in
# build/pkg. The .deb, the -dbgsym .ddeb, .buildinfo and .changes land in build/, never in the
# repository's parent directory. DEB_BUILD_OPTIONS=nocheck skips the unit tests it runs.
DEB_JOBS ?= 2
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_OUT = $(BUILD)/wmesh_$(VERSION)_$(DEB_ARCH)

.PHONY: deb _deb
deb:
	@sh scripts/deps.sh --deb
	@$(MAKE) --no-print-directory _deb

_deb:
	@v=$$(dpkg-parsechangelog -S Version) && [ "$$v" = "$(VERSION)" ] || \
	    { echo "deb: debian/changelog is at $$v, VERSION at $(VERSION)" >&2; exit 1; }
	@mkdir -p $(BUILD)
	WMESH_DEB_DIR=$(abspath $(BUILD)) dpkg-buildpackage -us -uc -b -j$(DEB_JOBS) \
	    --buildinfo-option=-u$(abspath $(BUILD)) --changes-option=-u$(abspath $(BUILD)) \
	    --buildinfo-file=$(DEB_OUT).buildinfo --changes-file=$(DEB_OUT).changes
	@echo "deb: $(DEB_OUT).deb"

clean:
	rm -rf build

-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
