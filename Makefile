# wmesh: a data mesh over MQTT. `make demo` and `make check` are all a newcomer needs.
# The public targets first install missing Debian packages (scripts/deps.sh), then run the
# real work in a sub-make so pkg-config sees the freshly installed libraries.

CC ?= cc
BUILD ?= build
PKGS := libmosquitto libcurl jansson libmicrohttpd libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wconversion -Wformat=2 -Wstrict-prototypes \
        -Wmissing-prototypes -Wno-sign-conversion
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT ?= -O2 -g
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(PKG_CFLAGS) -Isrc -MMD -MP $(CFLAGS)
LDFLAGS_ALL := $(LDFLAGS)
ifeq ($(SANITIZER),address)
BUILD := build/asan
CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_ALL += -fsanitize=address,undefined
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

.PHONY: all check demo bench fuzz deps _all _check _demo _bench unit integration clean format \
        format-check install

all check demo bench: deps
	@$(MAKE) --no-print-directory _$@

deps:
	@sh scripts/deps.sh

_all: $(PROG)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(LIB): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(PROG): $(CLI_OBJ) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(CLI_OBJ) $(LIB) $(PKG_LIBS) -lpthread

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) -o $@ $< $(LIB) $(PKG_LIBS) -lpthread

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: $(PROG)
	@WMESH=$(abspath $(PROG)) sh tests/integration/run.sh $(TESTS)

_check: $(PROG) unit integration

_demo: $(PROG)
	$(PROG) demo

_bench: $(PROG)
	@WMESH=$(abspath $(PROG)) sh bench/run.sh

format:
	clang-format -i src/*.[ch] src/cli/*.[ch] tests/unit/*.[ch]

format-check:
	clang-format --dry-run --Werror src/*.[ch] src/cli/*.[ch] tests/unit/*.[ch]

PREFIX ?= /usr/local
install: $(PROG)
	install -D -m 0755 $(PROG) $(DESTDIR)$(PREFIX)/bin/wmesh

clean:
	rm -rf build

-include $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
