/* cli_audit.c - `keyward audit list|verify` through /v1/audit: page through the trail and
 * check its hash chain; verify exits 1 naming the first bad record when the chain is broken. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"

static void audit_table_row(kw_cli_table_t *t, const json_t *r)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long)json_integer_value(json_object_get(r, "seq")));
    const char *cells[6] = {seq,
                            kw_cli_jstr(r, "at"),
                            kw_cli_jstr(r, "actor"),
                            kw_cli_jstr(r, "action"),
                            kw_cli_jstr(r, "target"),
                            kw_cli_jstr(r, "outcome")};
    kw_cli_table_row(t, cells);
}

static void audit_table(const json_t *items)
{
    static const char *const hdr[] = {"SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"};
    kw_cli_table_list(items, 6, hdr, audit_table_row);
}

static const kw_cli_opt_t audit_list_opts[] = {
    KW_CLI_FLD("target", "ID", "target", "only records about this id or policy name"),
    KW_CLI_FLD("actor", "ID", "actor", "only records by this principal (or system, anonymous)"),
    KW_CLI_FLD("order", "asc|desc", "order", "oldest or newest first (default desc)"),
    KW_CLI_LIST_OPTS("100"),
    KW_CLI_OPTS_END,
};

const kw_cli_cmd_t kw_cli_cmd_audit_list = {
    KW_CLI_CMD("audit", "list", kw_cli_list_exec, "", 0, 0, KW_CLI_CMD_ADMIN),
    KW_CLI_LIST("/v1/audit", audit_table, "(no audit records)", NULL),
    .help = "list audit records, newest first",
    .opts = audit_list_opts,
    .notes = "Needs keyward:auditor (or admin). --json shows each record's detail and hashes.\n",
};

static int audit_verify(kw_cli_t *cli, const kw_cli_args_t *a)
{
    json_t *resp = NULL;
    int rc = kw_cli_call(cli, "GET", "/v1/audit/verify", NULL, &resp);
    if (rc)
        return rc;
    long long records = json_integer_value(json_object_get(resp, "records"));
    int ok = json_is_true(json_object_get(resp, "ok"));
    if (cli->json)
        kw_cli_print_json(resp);
    else if (ok)
        kw_cli_say("ok: %lld records, chain intact (head %s)\n", records,
                   kw_cli_jstr(resp, "head"));
    if (!ok)
        rc = kw_cli_fail(KW_CLI_EAPI, "audit trail broken at record %lld of %lld: %s",
                         (long long)json_integer_value(json_object_get(resp, "first_bad")), records,
                         kw_cli_jstr(resp, "reason"));
    json_decref(resp);
    return rc;
}

const kw_cli_cmd_t kw_cli_cmd_audit_verify = {
    KW_CLI_CMD("audit", "verify", audit_verify, "", 0, 0, KW_CLI_CMD_ADMIN),
    .help = "check the audit trail's hash chain",
    .notes = "Exit status 1 when the chain is broken, naming the first record whose content or\n"
             "link does not match. Keep the printed head hash somewhere else to detect a trail\n"
             "rewritten from scratch.\n",
};

/* security: `keyward audit archive --before T FILE` - POST /v1/audit/archive, the archived
 * records written to FILE as JSON lines (created 0600, never overwritten), repeated until
 * nothing before T is left. */
static const kw_cli_opt_t audit_archive_opts[] = {
    KW_CLI_OPT("before", "T", "archive the records older than T (RFC 3339)"),
    KW_CLI_OPTS_END,
};

static int audit_archive(kw_cli_t *cli, const kw_cli_args_t *a)
{
    const char *before = kw_cli_arg(a, "before");
    if (before == NULL)
        return kw_cli_fail(KW_CLI_EUSAGE, "audit archive needs --before T");
    int fd = open(a->pos[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return kw_cli_fail(KW_CLI_EUSAGE, "cannot create %s: %s", a->pos[0], strerror(errno));
    FILE *f = fdopen(fd, "w");
    long long total = 0, first = 0, last = 0;
    int rc = 0;
    for (;;) {
        json_t *resp = NULL;
        json_t *body = json_pack("{s:s}", "before", before);
        rc = kw_cli_call(cli, "POST", "/v1/audit/archive", body, &resp);
        json_decref(body);
        if (rc)
            break;
        json_t *recs = json_object_get(resp, "records"), *r;
        size_t i;
        json_array_foreach(recs, i, r)
        {
            char *line = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
            if (line)
                fprintf(f, "%s\n", line);
            free(line);
            long long seq = (long long)json_integer_value(json_object_get(r, "seq"));
            if (first == 0)
                first = seq;
            last = seq;
        }
        long long n = (long long)json_integer_value(json_object_get(resp, "archived"));
        total += n;
        json_decref(resp);
        if (n == 0)
            break;
    }
    if (fclose(f) != 0 && rc == 0)
        rc = kw_cli_fail(KW_CLI_EUSAGE, "cannot write %s", a->pos[0]);
    if (rc == 0 && !cli->json) {
        if (total)
            kw_cli_say("archived %lld records (%lld..%lld) to %s; the trail now starts after a "
                       "signed checkpoint at %lld\n",
                       total, first, last, a->pos[0], last);
        else
            kw_cli_say("nothing to archive before %s\n", before);
    }
    return rc;
}

const kw_cli_cmd_t kw_cli_cmd_audit_archive = {
    KW_CLI_CMD("audit", "archive", audit_archive, "FILE", 1, 1, KW_CLI_CMD_ADMIN),
    .help = "move the records older than --before into FILE, leaving a signed checkpoint",
    .opts = audit_archive_opts,
    .notes = "Needs an admin key. The server verifies the whole chain first (nothing is\n"
             "archived from a broken trail), keeps the newest record, and records the archive\n"
             "itself in the trail. FILE holds one JSON record per line with its hashes.\n",
};
