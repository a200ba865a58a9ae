# weir: build, run and test.
#
#   make            build build/weir (optimised, -Werror)
#   make run        install missing packages, build, start on examples/quickstart.yml
#   make test       install missing packages, build, run every test (also under ASan+UBSan)
#   make unit       build and run the cmocka unit tests only
#   make fuzz       build the libFuzzer targets (clang)
#
# BUILD selects the output tree; SAN=1 builds with AddressSanitizer + UBSan.

BUILD ?= build
SAN ?= 0
CC ?= gcc
PKGS := yaml-0.1 libpcre2-8 gnutls libnghttp2 libngtcp2 libngtcp2_crypto_gnutls libnghttp3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes
CFLAGS_BASE := -std=gnu11 -g -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS) -MMD -MP
ifeq ($(SAN),1)
CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
else
CFLAGS_OPT := -O2
LDSAN :=
endif
CFLAGS := $(CFLAGS_BASE) $(CFLAGS_OPT) $(EXTRA_CFLAGS)
LDLIBS := $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(filter-out src/main.c,$(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

.DEFAULT_GOAL := all
.PHONY: all run test unit fuzz deps clean format bench-tools

# bench/h3load: the HTTP/3 load generator bench/h3.sh drives.
$(BUILD)/bench/h3load: bench/h3load.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDSAN) $(LDLIBS)

# bench/udpload: the UDP echo server and load generator bench/quic-passthrough.sh drives.
$(BUILD)/bench/udpload: bench/udpload.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDSAN)

bench-tools: $(BUILD)/bench/h3load $(BUILD)/bench/udpload

all: $(BUILD)/weir

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DWEIR_VERSION='"$(VERSION)"' -c $< -o $@

$(BUILD)/libweir.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/weir: $(MAIN_OBJ) $(BUILD)/libweir.a
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libweir.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libweir.a $(LDSAN) $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

# libFuzzer targets: the library is rebuilt with clang and the fuzzer's sanitizers.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -DWEIR_VERSION='"$(VERSION)"' -c $< -o $@
$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BIN)

deps:
	@sh scripts/deps.sh test

run:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	$(BUILD)/weir --configFile examples/quickstart.yml

test: deps
	@bash scripts/test.sh

format:
	clang-format -i src/*/*.c src/*/*.h src/*.c tests/unit/*.c fuzz/*.c

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
