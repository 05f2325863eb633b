# zcrelay - non-recursive GNU Makefile. See README for the targets.
# Honours CC, CFLAGS, CPPFLAGS, LDFLAGS; our own flags are appended.

-include config.mk

# Install directories. config.mk sets PREFIX and the ones given to
# ./configure; the others follow PREFIX, also one given to make
# (make install PREFIX=/usr). /usr keeps its configuration in /etc.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
BINDIR ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR ?= $(PREFIX)/share/doc/zcrelay
HAVE_LIBURING ?= 0

MAJOR := 0
VERSION := 0.2.0
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual -Wformat=2 -Wvla -Wimplicit-fallthrough \
	-Wno-unused-parameter
override CFLAGS += -std=c11 -fPIC -fvisibility=hidden $(WARN) $(EXTRA_CFLAGS)
override CPPFLAGS += -D_GNU_SOURCE -Iinclude -I. -MMD -MP
override LDFLAGS += $(EXTRA_LDFLAGS)
LIBS := -lpthread
ifeq ($(HAVE_LIBURING),1)
LIBS += -luring
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# The io_uring engine and movers are built only with liburing; without
# it, uring_none.c stands in for the engine (init says -ENOSYS) and the
# mover table has no io_uring entries (relays fall back).
URING_SRC := src/loop_uring.c src/uring_ops.c src/uring_bufs.c \
	src/xfer_ring.c src/xfer_uauto.c src/xfer_usplice.c
ifeq ($(HAVE_LIBURING),1)
LIB_SRC := $(filter-out src/uring_none.c,$(wildcard src/*.c))
else
LIB_SRC := $(filter-out $(URING_SRC),$(wildcard src/*.c))
endif
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_SRC := $(wildcard cmd/zcrelay/*.c)
CMD_OBJ := $(CMD_SRC:%.c=$(BUILD)/%.o)
# The daemon's modules without main(): unit tests link them too.
CMD_LIB_OBJ := $(filter-out $(BUILD)/cmd/zcrelay/main.o,$(CMD_OBJ))
CMD_LIBS := -lconfig
TEST_SRC := $(wildcard tests/lib/*.c tests/unit/*.c tests/integration/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

STATIC := $(BUILD)/libzcrelay.a
SHARED := $(BUILD)/libzcrelay.so.$(VERSION)
DAEMON := $(BUILD)/zcrelay
TESTBIN := $(BUILD)/zctest

.PHONY: all examples check test asan ubsan tsan install uninstall clean distclean \
	format format-check demo bench valgrind cppcheck soak soak-short soak-upgrade
all: $(STATIC) $(SHARED) $(DAEMON)

config.mk:
	./configure

$(BUILD)/%.o: %.c config.mk
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(STATIC): $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ) src/libzcrelay.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -shared -Wl,-soname,libzcrelay.so.$(MAJOR) \
		-Wl,--version-script=src/libzcrelay.map -Wl,-z,defs \
		$(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)
	$(Q)ln -sf libzcrelay.so.$(VERSION) $(BUILD)/libzcrelay.so.$(MAJOR)
	$(Q)ln -sf libzcrelay.so.$(MAJOR) $(BUILD)/libzcrelay.so

$(DAEMON): $(CMD_OBJ) $(STATIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CMD_OBJ) $(STATIC) $(LIBS) $(CMD_LIBS)

$(TESTBIN): $(TEST_OBJ) $(CMD_LIB_OBJ) $(STATIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(CMD_LIB_OBJ) \
		$(STATIC) $(LIBS) $(CMD_LIBS) -lcrypto

$(TEST_OBJ): override CPPFLAGS += -Isrc -Itests/lib -Icmd/zcrelay

# The syscall fault shim the fault_* tests preload into the daemon. Built
# without sanitizers or hidden visibility: its wrappers must be exported,
# and a preloaded library must not need a sanitizer runtime of its own.
FAULT_SO := $(BUILD)/libzcfault.so
$(FAULT_SO): tests/fault/zcfault.c config.mk
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -shared $(WARN) \
		-o $@ $< -ldl -lpthread

# make examples: examples/*.c, the library's example programs, each
# linked with the static library as a user would with pkg-config.
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
$(BUILD)/examples/%: examples/%.c $(STATIC) include/zcrelay.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -Iinclude $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)
examples: $(EXAMPLES)

# make check [T=filter]: the whole suite, one closing summary line.
# test_examples_* run the examples; test_install_* run make install
# here (ZC_SRCDIR, ZC_BUILD) into a scratch DESTDIR.
check test: all $(TESTBIN) $(FAULT_SO) $(EXAMPLES)
	ZC_DAEMON=$(abspath $(DAEMON)) ZC_FAULT_SO=$(abspath $(FAULT_SO)) \
		ZC_EXAMPLES=$(abspath $(BUILD)/examples) ZC_SRCDIR=$(CURDIR) \
		ZC_BUILD=$(BUILD) $(TESTBIN) $(T)

# make soak: zcsoak (tests/soak/) runs the daemon under 9000 sessions at
# once with churn, every byte checked, on each data path for SOAK_SECS
# seconds (about 10 minutes in all); make soak-short does the same in
# about 70 s. Neither is part of check. SOAK_ARGS adds zcsoak options
# (build/zcsoak --help).
SOAKBIN := $(BUILD)/zcsoak
SOAK_SECS ?= 120
SOAK_ARGS ?=
SOAK_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/soak/*.c)) \
	$(BUILD)/tests/lib/tproc.o
$(SOAK_OBJ): override CPPFLAGS += -Itests/lib
$(SOAKBIN): $(SOAK_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(SOAK_OBJ) -lpthread
soak: all $(SOAKBIN)
	ZC_DAEMON=$(abspath $(DAEMON)) $(SOAKBIN) --secs $(SOAK_SECS) \
		--hold 8000 $(SOAK_ARGS)
soak-short: all $(SOAKBIN)
	ZC_DAEMON=$(abspath $(DAEMON)) $(SOAKBIN) --secs 12 --hold 3000 \
		--drain 60 $(SOAK_ARGS)
# make soak-upgrade: the short soak with 10 upgrades (SIGUSR2) during
# the load on every data path: every session moves, every byte checked.
soak-upgrade: all $(SOAKBIN)
	ZC_DAEMON=$(abspath $(DAEMON)) $(SOAKBIN) --secs 12 --hold 3000 \
		--drain 60 --upgrades 10 $(SOAK_ARGS)

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan EXTRA_CFLAGS="$(SAN)" EXTRA_LDFLAGS="$(SAN)" check
ubsan:
	$(MAKE) BUILD=build-ubsan EXTRA_CFLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined" \
		EXTRA_LDFLAGS="-fsanitize=undefined" check
tsan:
	$(MAKE) BUILD=build-tsan EXTRA_CFLAGS="-fsanitize=thread" \
		EXTRA_LDFLAGS="-fsanitize=thread" check

# make valgrind: memcheck over the relay and library tests on the epoll
# engine (valgrind does not follow io_uring), failing on any error or
# definite leak.
VALGRIND_T ?= test_relay_half_close test_relay_reset test_relay_idle test_relay_server_speaks \
	test_relay_halfclose test_watch test_relay_tcp4_both test_relay_unix
valgrind: all $(TESTBIN)
	ZC_ENGINE=epoll T_VARIANTS=epoll T_TIMEOUT=600 ZC_DAEMON=$(abspath $(DAEMON)) \
		valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite $(TESTBIN) $(VALGRIND_T)

# make cppcheck: static analysis of the library and the daemon.
cppcheck:
	cppcheck --quiet --enable=warning,performance,portability --std=c11 \
		-D_GNU_SOURCE -Iinclude -Isrc -Icmd/zcrelay --inline-suppr \
		--error-exitcode=1 src cmd/zcrelay

# make demo: scripts/demo.sh with the fast, hashing ends of demo/zcdemo.c:
# direct against relayed throughput, the relay's CPU per GB, the
# spliced/copied split, every transfer checked with SHA-256.
DEMOBIN := $(BUILD)/zcdemo
$(BUILD)/demo/zcdemo.o: override CPPFLAGS += -Iinclude
$(DEMOBIN): $(BUILD)/demo/zcdemo.o $(STATIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lcrypto
demo: all
	@[ "$(HAVE_CRYPTO)" = 1 ] || { echo "make demo: zcdemo hashes with" \
		"libcrypto: apt-get install libssl-dev, then ./configure" >&2; exit 1; }
	$(Q)$(MAKE) -s --no-print-directory $(DEMOBIN)
	./scripts/demo.sh $(abspath $(DAEMON)) $(abspath $(DEMOBIN))

bench: all
	./bench/run.sh

# make install [DESTDIR=...] [PREFIX=...]: what is installed where is
# listed once here; uninstall removes exactly these files. The config
# file is installed only where none exists (an edited one is never
# overwritten) and removed only while it is still the shipped one.
CONFDIR = $(SYSCONFDIR)/zcrelay
INST_CONF = $(DESTDIR)$(CONFDIR)/zcrelay.conf
INST_FILES = $(addprefix $(DESTDIR)$(LIBDIR)/,libzcrelay.a \
		libzcrelay.so.$(VERSION) libzcrelay.so.$(MAJOR) libzcrelay.so \
		pkgconfig/zcrelay.pc) \
	$(DESTDIR)$(BINDIR)/zcrelay $(DESTDIR)$(INCLUDEDIR)/zcrelay.h \
	$(DESTDIR)$(MANDIR)/man8/zcrelay.8 $(DESTDIR)$(MANDIR)/man5/zcrelay.conf.5 \
	$(DESTDIR)$(MANDIR)/man3/libzcrelay.3 \
	$(DESTDIR)$(SYSTEMDUNITDIR)/zcrelay.service \
	$(DESTDIR)$(SYSTEMDUNITDIR)/zcrelay.socket \
	$(DESTDIR)$(BASHCOMPDIR)/zcrelay \
	$(addprefix $(DESTDIR)$(DOCDIR)/examples/,zcrelay.conf $(notdir $(wildcard examples/*.c)))
# @PATH@ names in the units and the .pc, replaced at install time.
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g; s|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g; s|@VERSION@|$(VERSION)|g' \
	-e 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@URING@|$(if $(filter 1,$(HAVE_LIBURING)),-luring,)|g'

install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(CONFDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libzcrelay.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libzcrelay.so.$(MAJOR)
	ln -sf libzcrelay.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libzcrelay.so
	install -m 755 $(DAEMON) $(DESTDIR)$(BINDIR)/
	install -m 644 include/zcrelay.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 man/zcrelay.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 man/zcrelay.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 man/libzcrelay.3 $(DESTDIR)$(MANDIR)/man3/
	$(SUBST) src/zcrelay.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/zcrelay.pc
	$(SUBST) contrib/zcrelay.service >$(DESTDIR)$(SYSTEMDUNITDIR)/zcrelay.service
	$(SUBST) contrib/zcrelay.socket >$(DESTDIR)$(SYSTEMDUNITDIR)/zcrelay.socket
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/zcrelay.pc \
		$(DESTDIR)$(SYSTEMDUNITDIR)/zcrelay.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/zcrelay.socket
	install -m 644 contrib/zcrelay.bash-completion $(DESTDIR)$(BASHCOMPDIR)/zcrelay
	install -m 644 examples/zcrelay.conf examples/*.c $(DESTDIR)$(DOCDIR)/examples/
	@if [ -e $(INST_CONF) ]; then \
		echo "install: keeping $(INST_CONF), the shipped one is contrib/zcrelay.conf"; \
	else \
		echo "install -m 644 contrib/zcrelay.conf $(INST_CONF)"; \
		install -m 644 contrib/zcrelay.conf $(INST_CONF); \
	fi

uninstall:
	rm -f $(INST_FILES)
	@if cmp -s contrib/zcrelay.conf $(INST_CONF); then \
		echo "rm -f $(INST_CONF)"; rm -f $(INST_CONF); \
	elif [ -e $(INST_CONF) ]; then \
		echo "uninstall: keeping $(INST_CONF): it was edited"; \
	fi
	@rmdir $(DESTDIR)$(CONFDIR) $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(DOCDIR) 2>/dev/null || true

FORMAT_SRC = $(wildcard include/*.h src/*.c src/*.h cmd/zcrelay/*.c cmd/zcrelay/*.h \
	tests/lib/*.c tests/lib/*.h tests/unit/*.c tests/integration/*.c \
	tests/fault/*.c tests/soak/*.c tests/soak/*.h examples/*.c demo/*.c)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

# make fuzz [FUZZ_SECS=60]: every tests/fuzz/fuzz_*.c is a libFuzzer
# harness, built with clang, ASan and UBSan in build-fuzz/ together with the
# library and the daemon's modules (not main.c), then run for FUZZ_SECS
# seconds on a scratch copy of tests/fuzz/corpus/<harness>/ (and with
# tests/fuzz/<harness>.dict and .options, extra flags, if there are).
# A crash, leak, UBSan report
# or slow input (-timeout=10) fails; the input is kept in build-fuzz/crash/.
FUZZ_CC ?= clang
FUZZ_SECS ?= 60
FUZZ_CFLAGS ?= -O1 -g
FUZZ_DIR := build-fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_OBJ := $(patsubst %.c,$(FUZZ_DIR)/%.o,$(LIB_SRC) \
	$(filter-out cmd/zcrelay/main.c,$(CMD_SRC)) tests/fuzz/fakeresolv.c)
FORMAT_SRC += $(FUZZ_SRC) $(wildcard tests/fuzz/*.h) tests/fuzz/fakeresolv.c
.PHONY: fuzz fuzz-clean
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_SRC:%.c=$(FUZZ_DIR)/%.o)

$(FUZZ_DIR)/%.o: %.c config.mk
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) -Isrc -Icmd/zcrelay -std=c11 $(WARN) \
		$(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/tests/fuzz/fuzz_%.o $(FUZZ_OBJ)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ \
		$(LIBS) $(CMD_LIBS)

fuzz: $(FUZZ_BIN)
	$(Q)mkdir -p $(FUZZ_DIR)/crash; \
	for h in $(notdir $(FUZZ_BIN)); do \
		run=$(FUZZ_DIR)/run/$$h; rm -rf $$run; mkdir -p $$run; \
		cp tests/fuzz/corpus/$$h/* $$run/ 2>/dev/null; \
		dict=; [ -f tests/fuzz/$$h.dict ] && dict=-dict=tests/fuzz/$$h.dict; \
		opts=; [ -f tests/fuzz/$$h.options ] && opts=$$(cat tests/fuzz/$$h.options); \
		echo "  FUZZ    $$h for $(FUZZ_SECS) s"; \
		if ! UBSAN_OPTIONS=print_stacktrace=1 $(FUZZ_DIR)/$$h $$dict $$opts \
			-max_total_time=$(FUZZ_SECS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/crash/$$h- $$run >$$run.log 2>&1; \
		then \
			tail -n 60 $$run.log; \
			echo "fuzz: $$h FAILED (log $$run.log, input in $(FUZZ_DIR)/crash/)"; \
			exit 1; \
		fi; \
		echo "  FUZZ    $$h ok: $$(sed -n 's/^stat::number_of_executed_units: *//p' $$run.log) runs"; \
	done

fuzz-clean:
	rm -rf $(FUZZ_DIR)
clean: fuzz-clean

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_SRC:%.c=$(FUZZ_DIR)/%.d)

clean:
	rm -rf build build-asan build-ubsan build-tsan
distclean: clean
	rm -f config.mk config.h

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(SOAK_OBJ:.o=.d) \
	$(BUILD)/demo/zcdemo.d
