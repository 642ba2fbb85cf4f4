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

# Three libraries, each depending only on those after it: app (the daemon's settings and
# first-start files) -> store (the backends, SQLite and PostgreSQL) -> core (keys, index,
# lifecycle; pure but for the store contract in store/store.h). test_core_alone proves core
# links without SQLite, libpq or the daemon (docs/internals/build.md).
CORE_SRC := $(wildcard src/core/*.c)
STORE_SRC := $(wildcard src/store/*.c)
APP_SRC := $(wildcard src/app/*.c)
SERVER_SRC := $(wildcard src/server/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
MAIN_SRC := src/main.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)

CORE_OBJ := $(CORE_SRC:%.c=$(B)/obj/%.o)
STORE_OBJ := $(STORE_SRC:%.c=$(B)/obj/%.o)
APP_OBJ := $(APP_SRC:%.c=$(B)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
MAIN_OBJ := $(MAIN_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg))
WEB_OBJ := $(B)/obj/gen/web_assets.o

# messages: the built-in mail templates (mail/templates/) compiled into the server
MAIL_TMPL := $(sort $(wildcard mail/templates/*.txt mail/templates/*.html))
SERVER_OBJ_GEN := $(B)/obj/$(B)/gen/mail_builtin.o

all: $(B)/keyward $(UNIT_BIN)

# messages: generated C holding mail/templates/ (after `all`, which stays the default goal)
$(B)/gen/mail_builtin.c: scripts/embed-templates.sh $(MAIL_TMPL)
	@mkdir -p $(dir $@)
	scripts/embed-templates.sh $(MAIL_TMPL) > $@.tmp && mv $@.tmp $@

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/libkwcore.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/libkwstore.a: $(STORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/libkwapp.a: $(APP_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
# store and core call each other (the backends use core's records, lifecycle the store
# contract): one link group
KW_LIBS := $(B)/libkwapp.a $(B)/libkwstore.a $(B)/libkwcore.a
KW_LINK := $(B)/libkwapp.a -Wl,--start-group $(B)/libkwstore.a $(B)/libkwcore.a -Wl,--end-group

$(B)/keyward: $(MAIN_OBJ) $(SERVER_OBJ) $(CLI_OBJ) $(WEB_OBJ) $(SERVER_OBJ_GEN) $(KW_LIBS)
	$(CC) $(OPT) $(LDOPT) -o $@ $(MAIN_OBJ) $(SERVER_OBJ) $(CLI_OBJ) $(WEB_OBJ) $(SERVER_OBJ_GEN) $(KW_LINK) $(LDLIBS_ALL)

# The web console's files (web/), built into the binary (scripts/embed-web.sh).
$(B)/gen/web_assets.c: $(WEB_FILES) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	scripts/embed-web.sh $@ $(WEB_FILES)
$(WEB_OBJ): $(B)/gen/web_assets.c src/server/console.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# Unit tests link the three libraries only: they build without the server.
$(B)/tests/%: tests/unit/%.c tests/unit/t.h tests/unit/t_store.h $(KW_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@ $< $(KW_LINK) $(LDLIBS_ALL)

# Allocation failure injection (tests/unit/t.h, T_OOM): the pure core modules' unit tests
# again, linked against a copy of libkwcore.a whose malloc, calloc, realloc, strdup and
# strndup calls are renamed to t.h's t_oom_* (objcopy), so that only the core's own
# allocations fail: each case is re-run with the core's allocation N failing, N = 1, 2, ...
# until a run sees none. scripts/test.sh runs them in the ASan pass (no crash, no leak).
# The app's settings parser (test_config) is run the same way, with a renamed libkwapp.a.
OOM_TESTS := key duration cidr form mime tmpl jdump token util sink expstats model seal config
OOM_BIN := $(OOM_TESTS:%=$(B)/tests/oom/test_%)
OOM_SYMS := $(foreach f,malloc calloc realloc strdup strndup,--redefine-sym $(f)=t_oom_$(f))
all: $(OOM_BIN)
$(B)/oom/libkwcore.a: $(CORE_OBJ)
$(B)/oom/libkwapp.a: $(APP_OBJ)
$(B)/oom/libkwcore.a $(B)/oom/libkwapp.a:
	@mkdir -p $(B)/oom/$(basename $(notdir $@))
	rm -f $@ $(B)/oom/$(basename $(notdir $@))/*.o
	for o in $^; do objcopy $(OOM_SYMS) $$o $(B)/oom/$(basename $(notdir $@))/$$(basename $$o) \
	    || exit 1; done
	ar rcs $@ $(B)/oom/$(basename $(notdir $@))/*.o
$(B)/tests/oom/%: tests/unit/%.c tests/unit/t.h $(B)/oom/libkwapp.a $(B)/libkwstore.a \
    $(B)/oom/libkwcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -DT_OOM -Itests/unit -o $@ $< $(B)/oom/libkwapp.a \
	    -Wl,--start-group $(B)/libkwstore.a $(B)/oom/libkwcore.a -Wl,--end-group $(LDLIBS_ALL)

# Core links alone. Every object of libkwcore.a is linked (--whole-archive) with libc,
# libcrypto and jansson only (no -lsqlite3, no libpq, no app or server objects): the link
# must leave undefined nothing but the store contract (kw_store_*, implemented by
# libkwstore.a); then the test program itself links against libkwcore.a alone and runs.
CORE_LIBS := $(shell pkg-config --libs libcrypto jansson 2>/dev/null) -lm -pthread
# ... and calls nothing that opens, creates or removes a file: the daemon's file policies
# (key files, the config file) live in src/app/.
CORE_NO_FS := open|open64|openat|fopen|fopen64|creat|unlink|rename|mkstemp|mkdir|fchmod|chmod
$(B)/tests/test_core_alone: tests/unit/test_core_alone.c tests/unit/t.h $(B)/libkwcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@.whole $< -Wl,--whole-archive \
	    $(B)/libkwcore.a -Wl,--no-whole-archive -Wl,--warn-unresolved-symbols $(CORE_LIBS) \
	    2> $@.link || { cat $@.link; exit 1; }
	rm -f $@.whole
	@if grep "undefined reference" $@.link | grep -v "undefined reference to .kw_store_"; then \
	    echo "libkwcore.a needs more than the store contract (above)"; exit 1; fi
	@if nm -u $(B)/libkwcore.a | grep -wE '$(CORE_NO_FS)'; then \
	    echo "libkwcore.a touches the file system (above): that belongs in src/app/"; exit 1; fi
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@ $< $(B)/libkwcore.a $(CORE_LIBS)

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

# The gateway's request recogniser is pure: its test links it with core/util.o alone.
$(B)/tests/test_h1: tests/unit/test_h1.c tests/unit/t.h $(B)/obj/src/server/h1.o $(B)/obj/src/core/util.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -Itests/unit -o $@ $< $(B)/obj/src/server/h1.o $(B)/obj/src/core/util.o

# Generated at build time from the command and settings tables behind --help (cli_gen.c), so
# they cannot drift from it: man pages keyward(1), keyward-serve(8), keyward.conf(5) and the
# bash and zsh completion scripts; and docs/openapi.yaml as JSON for /v1/openapi.json.
GEN_DOCS := $(B)/gen/keyward.1 $(B)/gen/keyward-serve.8 $(B)/gen/keyward.conf.5 \
    $(B)/gen/keyward.bash $(B)/gen/_keyward
all: $(GEN_DOCS)
$(B)/gen/keyward.1: $(B)/keyward
	@mkdir -p $(dir $@)
	$(B)/keyward help --man 1 > $@.tmp && mv $@.tmp $@
$(B)/gen/keyward-serve.8: $(B)/keyward
	@mkdir -p $(dir $@)
	$(B)/keyward help --man 8 > $@.tmp && mv $@.tmp $@
$(B)/gen/keyward.conf.5: $(B)/keyward
	@mkdir -p $(dir $@)
	$(B)/keyward help --man 5 > $@.tmp && mv $@.tmp $@
$(B)/gen/keyward.bash: $(B)/keyward
	@mkdir -p $(dir $@)
	$(B)/keyward help --completion bash > $@.tmp && mv $@.tmp $@
$(B)/gen/_keyward: $(B)/keyward
	@mkdir -p $(dir $@)
	$(B)/keyward help --completion zsh > $@.tmp && mv $@.tmp $@

# docs/openapi.yaml is the one source; the server embeds its JSON form (h_openapi.c).
# PYTHON3 needs the yaml module (Debian: python3-yaml, scripts/deps.sh).
PYTHON3 ?= /usr/bin/python3
$(B)/gen/openapi.json: docs/openapi.yaml scripts/openapi-json.py
	@mkdir -p $(dir $@)
	$(PYTHON3) scripts/openapi-json.py $< $@
$(B)/obj/src/server/h_openapi.o: $(B)/gen/openapi.json
$(B)/obj/src/server/h_openapi.o: CFLAGS_ALL += -DKW_OPENAPI_JSON='"$(B)/gen/openapi.json"'

BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
DOCDIR ?= $(DATADIR)/doc/keyward
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

# `make install [PREFIX=/usr/local] [DESTDIR=...]`: the program, its documents and the
# library (below). The unit's ExecStart names the installed binary.
install: install-bin install-lib
install-bin: $(B)/keyward $(GEN_DOCS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(B)/keyward $(DESTDIR)$(BINDIR)/keyward
	install -m 644 $(B)/gen/keyward.1 $(DESTDIR)$(MANDIR)/man1/keyward.1
	install -m 644 $(B)/gen/keyward-serve.8 $(DESTDIR)$(MANDIR)/man8/keyward-serve.8
	install -m 644 $(B)/gen/keyward.conf.5 $(DESTDIR)$(MANDIR)/man5/keyward.conf.5
	install -m 644 $(B)/gen/keyward.bash $(DESTDIR)$(BASHCOMPDIR)/keyward
	install -m 644 $(B)/gen/_keyward $(DESTDIR)$(ZSHCOMPDIR)/_keyward
	sed 's|/usr/local/bin/keyward|$(BINDIR)/keyward|g' deploy/systemd/keyward.service \
	    > $(DESTDIR)$(SYSTEMDUNITDIR)/keyward.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/keyward.service
	install -m 644 deploy/keyward.conf.example $(DESTDIR)$(DOCDIR)/keyward.conf.example

install-lib: $(LIB_ALL)
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

.PHONY: all unit check clean format install install-bin install-lib
-include $(LIB_OBJ:.o=.d) $(CORE_OBJ:.o=.d) $(STORE_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
