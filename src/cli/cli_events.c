/* cli_events.c - `keyward events list|show|retry` through /v1/events: the outbox with each
 * event's per-channel delivery state, and re-queueing deliveries that failed or were
 * disabled (a 410) once the receiver is fixed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_cred.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"

/* "2/3 delivered" style summary of an event's deliveries. */
static void summary(const json_t *ev, char *out, size_t n)
{
    json_t *d = json_object_get(ev, "deliveries"), *x;
    size_t i, ok = 0, bad = 0, total = json_array_size(d);
    json_array_foreach(d, i, x)
    {
        const char *st = kw_cli_jstr(x, "state");
        ok += strcmp(st, "delivered") == 0;
        bad += strcmp(st, "failed") == 0 || strcmp(st, "disabled") == 0;
    }
    if (total == 0)
        snprintf(out, n, "no channels");
    else
        snprintf(out, n, "%zu/%zu delivered%s", ok, total, bad ? ", some FAILED" : "");
}

static void events_table_row(kw_cli_table_t *t, const json_t *e)
{
    char sum[64], type[80];
    const char *thr = json_string_value(json_object_get(e, "threshold"));
    summary(e, sum, sizeof sum);
    snprintf(type, sizeof type, "%s%s%s%s", kw_cli_jstr(e, "type"), thr ? " (" : "", thr ? thr : "",
             thr ? ")" : "");
    const char *cells[6] = {kw_cli_jstr(e, "id"),          type,
                            kw_cli_jstr(e, "occurred_at"), kw_cli_jstr(e, "key_id"),
                            kw_cli_jstr(e, "hint"),        sum};
    kw_cli_table_row(t, cells);
}

static void events_table(const json_t *items)
{
    static const char *const hdr[] = {"EVENT", "TYPE", "AT", "KEY", "HINT", "DELIVERY"};
    kw_cli_table_list(items, 6, hdr, events_table_row);
}

static void delivery_row(kw_cli_table_t *t, const json_t *x)
{
    char att[24];
    snprintf(att, sizeof att, "%lld",
             (long long)json_integer_value(json_object_get(x, "attempts")));
    const char *cells[6] = {kw_cli_jstr(x, "channel"),
                            kw_cli_jstr(x, "state"),
                            att,
                            kw_cli_jstr(x, "next_attempt_at"),
                            kw_cli_jstr(x, "delivered_at"),
                            kw_cli_jstr(x, "last_error")};
    kw_cli_table_row(t, cells);
}

static void print_event(const json_t *e)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    kw_cli_kv(t, "event", "%s", kw_cli_jstr(e, "id"));
    kw_cli_kv(t, "type", "%s", kw_cli_jstr(e, "type"));
    kw_cli_kv(t, "occurred", "%s", kw_cli_jstr(e, "occurred_at"));
    kw_cli_kv(t, "credential", "%s", kw_cli_jstr(e, "credential_id"));
    kw_cli_kv(t, "key", "%s (%s)", kw_cli_jstr(e, "key_id"), kw_cli_jstr(e, "hint"));
    if (json_object_get(e, "threshold"))
        kw_cli_kv(t, "threshold", "%s", kw_cli_jstr(e, "threshold"));
    if (json_object_get(e, "expires_at"))
        kw_cli_kv(t, "expires", "%s", kw_cli_jstr(e, "expires_at"));
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);

    static const char *const hdr[] = {"CHANNEL", "STATE",     "ATTEMPTS",
                                      "NEXT",    "DELIVERED", "LAST ERROR"};
    json_t *d = json_object_get(e, "deliveries");
    printf("\n");
    if (json_array_size(d) == 0) {
        printf("(no channels: the credential has no contacts and no --sink is set)\n");
        return;
    }
    kw_cli_table_list(d, 6, hdr, delivery_row);
}

static const kw_cli_opt_t events_list_opts[] = {
    KW_CLI_FLD("type", "TYPE", "type", "only events of this type (e.g. key.expiring)"),
    KW_CLI_OPT("credential", "CRED", "only events about this credential (id or name)"),
    KW_CLI_LIST_OPTS("50"),
    KW_CLI_OPTS_END,
};

static int events_list(kw_cli_t *cli, const kw_cli_args_t *a)
{
    char *base, *cid = NULL;
    int rc;
    if (kw_cli_arg(a, "credential") &&
        (rc = kw_cli_cred_ref(cli, kw_cli_arg(a, "credential"), &cid)) != 0)
        return rc;
    base = kw_cli_path("/v1/events");
    if (cid)
        kw_cli_query_add(&base, "credential_id", cid);
    free(cid);
    return kw_cli_list_cmd(cli, a, base, events_table, "(no events)", NULL);
}

const kw_cli_cmd_t kw_cli_cmd_events_list = {
    KW_CLI_CMD("events", "list", events_list, "", 0, 0, KW_CLI_CMD_ADMIN),
    .help = "list events (alerts, key changes), newest first, with delivery state",
    .opts = events_list_opts,
    .notes = "DELIVERY counts the channels (contacts and --sink) that have the event.\n",
};

const kw_cli_cmd_t kw_cli_cmd_events_show = {
    KW_CLI_CMD("events", "show", kw_cli_show_cmd, "EVENT_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_GET("/v1/events/%s", print_event),
    .help = "show one event and its delivery to each channel",
};

static void retried(const json_t *resp, const char *verb)
{
    kw_cli_say("Re-queued %lld deliveries of %s.\n\n",
               (long long)json_integer_value(json_object_get(resp, "requeued")),
               kw_cli_jstr(resp, "id"));
    print_event(resp);
}

const kw_cli_cmd_t kw_cli_cmd_events_retry = {
    KW_CLI_CMD("events", "retry", kw_cli_send_cmd, "EVENT_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/events/%s/retry", retried, NULL),
    .help = "send an event again to the channels where it failed or was disabled",
    .notes = "Also re-enables a webhook that answered 410 Gone. Channels that already have\n"
             "the event are never sent it again.\n",
};
