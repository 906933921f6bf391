# Switchboard — plain Makefile with pkg-config.
#   make                 build build/switchboard and build/sim-worker
#   make run             install what is missing, build, start the daemon on the defaults
#                        (process runner, the Baileys worker)
#   make demo            the same with the simulator worker (no WhatsApp needed)
#   make test            install, build, run unit + integration + worker tests (+ fuzz smoke)
#   make docker-images   build switchboard:dev, switchboard-baileys-worker:dev, switchboard-sim-worker:dev
#   make check           compile-only checks: warnings as errors, cppcheck
#   make SANITIZER=address,undefined test   the same suite under ASan+UBSan (separate build dir)
#   make fuzz            build the libFuzzer targets (clang)
#   make bench           run the benchmarks in bench/ (writes nothing unless asked)

CC       ?= cc
PKGS     := libevent libcurl sqlite3 jansson libcrypto libqrencode libarchive
SANITIZER ?=

ifeq ($(SANITIZER),)
BUILD    := build
SANFLAGS :=
else
BUILD    := build-san
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) $(SANFLAGS) -D_GNU_SOURCE -Isrc -Isrc/util -I$(BUILD)/gen
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   := $(PKG_LIBS) -lm -lpthread
LDFLAGS  += $(SANFLAGS)

UTIL_SRC := $(wildcard src/util/*.c)
# every daemon source except main.c goes into a static library the tests link against
CORE_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(UTIL_SRC)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
SIM_SRC  := $(wildcard workers/sim/*.c)
SIM_OBJ  := $(SIM_SRC:%.c=$(BUILD)/obj/%.o) $(UTIL_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)


.PHONY: all run demo test unit integration browser worker-test check fuzz fuzz-smoke bench clean setup \
        docker-images docker-engine

all: $(BUILD)/switchboard $(BUILD)/sim-worker

setup:
	@scripts/setup

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

# the schema is compiled in as a string so the binary needs nothing beside it
$(BUILD)/gen/schema.h: src/schema.sql
	@mkdir -p $(dir $@)
	awk 'BEGIN{print "static const char schema_sql[] ="} {gsub(/\\/,"\\\\"); gsub(/"/,"\\\""); print "\"" $$0 "\\n\""} END{print ";"}' $< > $@

$(BUILD)/obj/src/store.o: $(BUILD)/gen/schema.h

$(BUILD)/libcore.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/switchboard: $(BUILD)/obj/src/main.o $(BUILD)/libcore.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/sim-worker: $(SIM_OBJ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcore.a tests/unit/tap.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit $< $(BUILD)/libcore.a $(LDFLAGS) $(LDLIBS) -o $@

# the Baileys worker's npm dependencies, installed exactly as locked
BAILEYS := workers/baileys
$(BAILEYS)/node_modules/.installed: $(BAILEYS)/package.json $(BAILEYS)/package-lock.json
	cd $(BAILEYS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the integration tests' npm dependencies (the twilio package, for its webhook signatures)
tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup all $(BAILEYS)/node_modules/.installed
	$(BUILD)/switchboard

demo: setup all
	WORKER_COMMAND="$(CURDIR)/$(BUILD)/sim-worker" $(BUILD)/switchboard

worker-test: $(BAILEYS)/node_modules/.installed
	@cd $(BAILEYS) && npm test

unit: $(UNIT_BIN)
	@tests/run-unit $(UNIT_BIN)

integration: all $(BAILEYS)/node_modules/.installed tests/node_modules/.installed
	@SB_BUILD=$(BUILD) node --test --test-concurrency=1 tests/integration/

# the dashboard in Debian's chromium (headless), driven by playwright-core
browser: all tests/node_modules/.installed
	@SB_BUILD=$(BUILD) node --test --test-concurrency=1 tests/browser/

test: setup all unit worker-test integration browser fuzz-smoke

check: setup all $(UNIT_BIN)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem -Isrc -Isrc/util -Ibuild/gen \
	  --include=/usr/include/jansson.h src workers/sim

# libFuzzer targets: clang only, always with ASan+UBSan
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -Isrc/util -Ibuild/gen -fsanitize=fuzzer,address,undefined
build-fuzz/%: tests/fuzz/%.c $(CORE_SRC) build/gen/schema.h
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $(PKG_CFLAGS) $(filter %.c,$^) $(LDLIBS) -o $@

fuzz: $(FUZZ_BIN)

fuzz-smoke: $(FUZZ_BIN)
	@tests/run-fuzz-smoke $(FUZZ_BIN)

bench: all
	@scripts/setup --bench
	@bench/run-all

docker-engine:
	@scripts/docker-engine

docker-images: all
	@scripts/docker-images all

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
