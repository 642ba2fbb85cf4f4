# keyward - plain make. `make` builds build/keyward; `make MODE=asan` builds build-asan/
# with ASan+UBSan; `make check` runs the whole suite (scripts/test.sh).
MODE ?= release
CC ?= cc
PKGS := libmicrohttpd jansson sqlite3 libcrypto zlib libcurl
# libpq: the PostgreSQL store backend (src/store/postgres.c), built when libpq is there
PKGS += $(shell pkg-config --exists libpq 2>/dev/null && echo libpq)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PKG_CFLAGS += $(if $(filter libpq,$(PKGS)),-DKW_HAVE_LIBPQ)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE -pthread $(WARN) -Isrc -Iinclude $(PKG_CFLAGS)

ifeq ($(MODE),asan)
B := build-asan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDOPT := -fsanitize=address,undefined
else
B := build
OPT := -O2 -g
LDOPT :=
endif

CFLAGS_ALL := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
LDLIBS_ALL := $(PKG_LIBS) -lm -pthread

CORE_SRC := $(wildcard src/core/*.c) $(wildcard src/store/*.c)
SERVER_SRC := $(wildcard src/server/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
MAIN_SRC := src/main.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)

CORE_OBJ := $(CORE_SRC:%.c=$(B)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
MAIN_OBJ := $(MAIN_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

all: $(B)/keyward $(UNIT_BIN)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/libkwcore.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/keyward: $(MAIN_OBJ) $(SERVER_OBJ) $(CLI_OBJ) $(B)/libkwcore.a
	$(CC) $(OPT) $(LDOPT) -o $@ $(MAIN_OBJ) $(SERVER_OBJ) $(CLI_OBJ) $(B)/libkwcore.a $(LDLIBS_ALL)

# Unit tests link the core (and store) only: src/core builds without the server.
$(B)/tests/%: tests/unit/%.c tests/unit/t.h $(B)/libkwcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@ $< $(B)/libkwcore.a $(LDLIBS_ALL)

# The embeddable library (include/keyward.h, docs/library.md): key text checks and the
# verify client, as libkeyward.a and libkeyward.so, position-independent, exporting only
# keyward_* symbols from the .so. `make install PREFIX=...` installs it with keyward.pc.
KW_VERSION := $(shell sed -n 's/^\#define KEYWARD_VERSION "\(.*\)"/\1/p' include/keyward.h)
LIB_SRC := $(wildcard src/lib/*.c) src/core/key.c src/core/util.c src/core/err.c
LIB_OBJ := $(LIB_SRC:%.c=$(B)/pic/%.o)
LIB_LIBS := $(shell pkg-config --libs libcrypto zlib 2>/dev/null) -pthread
LIB_ALL := $(B)/libkeyward.a $(B)/libkeyward.so
all: $(LIB_ALL)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(B)/libkeyward.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libkeyward.so: $(LIB_OBJ)
	$(CC) -shared $(OPT) $(LDOPT) -Wl,-soname,libkeyward.so.$(KEYWARD_SOMAJOR) -o $@ $^ $(LIB_LIBS)

KEYWARD_SOMAJOR := 0

# The library's unit test links the static library alone: it must be self-contained.
$(B)/tests/test_libkeyward: tests/unit/test_libkeyward.c tests/unit/t.h $(B)/libkeyward.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@ $< $(B)/libkeyward.a $(LIB_LIBS)

# The gateway's request recogniser is pure: its test links it alone.
$(B)/tests/test_h1: tests/unit/test_h1.c tests/unit/t.h $(B)/obj/src/server/h1.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@ $< $(B)/obj/src/server/h1.o

install: $(LIB_ALL)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 644 include/keyward.h $(DESTDIR)$(INCLUDEDIR)/keyward.h
	install -m 644 $(B)/libkeyward.a $(DESTDIR)$(LIBDIR)/libkeyward.a
	install -m 755 $(B)/libkeyward.so $(DESTDIR)$(LIBDIR)/libkeyward.so.$(KW_VERSION)
	ln -sf libkeyward.so.$(KW_VERSION) $(DESTDIR)$(LIBDIR)/libkeyward.so.$(KEYWARD_SOMAJOR)
	ln -sf libkeyward.so.$(KEYWARD_SOMAJOR) $(DESTDIR)$(LIBDIR)/libkeyward.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	    'Name: keyward' 'Description: keyward API key checks and verify client' \
	    'Version: $(KW_VERSION)' 'Requires.private: libcrypto zlib' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lkeyward' 'Libs.private: -pthread' \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/keyward.pc

unit: $(UNIT_BIN)

check:
	scripts/test.sh

clean:
	rm -rf build build-asan build-fuzz

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/unit/*.c' \
	    'tests/unit/*.h' 'tests/fuzz/*.c' 'tests/fuzz/*.h' 'bench/*.c' 'tests/faults/*.c')

.PHONY: all unit check clean format install
-include $(LIB_OBJ:.o=.d) $(CORE_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
