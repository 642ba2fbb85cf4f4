/* cli_show.c - the commands' one shape: call the server, then print the answer (--json:
 * as the server sent it; else through the command's printer). A list pages through
 * {"items", "next"} answers (one page, or every page with --all) and prints a table or the
 * merged JSON. Answers are freed by jansson, which wipes them (cli.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"

/* method path (consumed) with body; print the answer with show(answer) or, when show is
 * NULL, send(answer, verb). */
static int show_call(kw_cli_t *cli, const char *method, char *path, json_t *body,
                     void (*show)(const json_t *), void (*send)(const json_t *, const char *),
                     const char *verb)
{
    json_t *resp = NULL;
    int rc = kw_cli_call(cli, method, path, body, &resp);

    if (rc == 0) {
        if (cli->json)
            kw_cli_print_json(resp);
        else if (show)
            show(resp);
        else
            send(resp, verb);
    }
    json_decref(resp);
    free(path);
    return rc;
}

int kw_cli_show(kw_cli_t *cli, char *path, void (*print)(const json_t *answer))
{
    return show_call(cli, "GET", path, NULL, print, NULL, NULL);
}

/* The row's path with its %s the first argument (a command without one has no %s). */
static char *show_row_path(const kw_cli_t *cli, const kw_cli_args_t *a)
{
    return kw_cli_path(cli->cmd->path, a->npos > 0 ? a->pos[0] : "");
}

int kw_cli_show_cmd(kw_cli_t *cli, const kw_cli_args_t *a)
{
    return kw_cli_show(cli, show_row_path(cli, a), cli->cmd->print);
}

int kw_cli_send(kw_cli_t *cli, const char *method, char *path, json_t *body,
                void (*print)(const json_t *answer, const char *verb), const char *verb)
{
    return show_call(cli, method, path, body, NULL, print, verb);
}

int kw_cli_send_cmd(kw_cli_t *cli, const kw_cli_args_t *a)
{
    const kw_cli_cmd_t *c = cli->cmd;
    json_t *body = NULL;
    int rc = 0;

    if (strcmp(c->method, "POST") == 0 || strcmp(c->method, "PATCH") == 0) {
        body = c->body ? json_loads(c->body, 0, NULL) : json_object();
        if (c->arg_field)
            json_object_set_new(body, c->arg_field, json_string_nocheck(a->pos[0]));
        kw_cli_body_fields(body, a);
        if (c->build)
            rc = c->build(cli, a, body);
        if (rc == 0 && c->if_empty && json_object_size(body) == 0)
            rc = kw_cli_usage(cli, "%s", c->if_empty);
    }
    if (rc == 0)
        rc = kw_cli_send(cli, c->method, show_row_path(cli, a), body, c->answer, c->verb);
    json_decref(body);
    return rc;
}

int kw_cli_list_pages(kw_cli_t *cli, const char *base, const char *start, int all, json_t **items,
                      char **next)
{
    json_t *acc = json_array(), *resp = NULL;
    char *path = NULL;
    char *cursor = start ? kw_cli_xstrdup(start) : NULL;
    int rc;
    *next = NULL;
    for (;;) {
        free(path);
        path = kw_cli_xstrdup(base);
        if (cursor)
            kw_cli_query_add(&path, "cursor", cursor);
        json_decref(resp);
        resp = NULL;
        if ((rc = kw_cli_call(cli, "GET", path, NULL, &resp)) != 0)
            break;
        if (!json_is_array(json_object_get(resp, "items"))) {
            rc = kw_cli_fail(KW_CLI_EAPI, "unexpected answer from the server: no 'items'");
            break;
        }
        json_array_extend(acc, json_object_get(resp, "items"));
        free(cursor);
        cursor = json_string_value(json_object_get(resp, "next"))
                     ? kw_cli_xstrdup(json_string_value(json_object_get(resp, "next")))
                     : NULL;
        if (!all || cursor == NULL)
            break;
    }
    json_decref(resp);
    free(path);
    if (rc) {
        free(cursor);
        json_decref(acc);
        return rc;
    }
    *items = acc;
    *next = cursor;
    return 0;
}

/* Print the list as {"items", "next"} JSON, or hand it to table(). */
int kw_cli_list_cmd(kw_cli_t *cli, const kw_cli_args_t *a, char *base,
                    void (*table)(const json_t *), const char *empty, const char *what)
{
    json_t *items = NULL;
    long limit = 0;
    char lim[24];
    char *next = NULL;
    int rc;
    if ((rc = kw_cli_arg_posint(cli, a, "limit", &limit)) != 0) {
        free(base);
        return rc;
    }
    for (const kw_cli_opt_t *o = a->opts; o && o->name; o++)
        if (o->field && kw_cli_arg(a, o->name))
            kw_cli_query_add(&base, o->field, kw_cli_arg(a, o->name));
    if (limit) {
        snprintf(lim, sizeof lim, "%ld", limit);
        kw_cli_query_add(&base, "limit", lim);
    }
    rc = kw_cli_list_pages(cli, base, kw_cli_arg(a, "cursor"), kw_cli_arg(a, "all") != NULL, &items,
                           &next);
    free(base);
    if (rc)
        return rc;
    if (cli->json) {
        json_t *o =
            json_pack("{s:O, s:o}", "items", items, "next", next ? json_string(next) : json_null());
        kw_cli_print_json(o);
        json_decref(o);
    } else if (json_array_size(items) == 0) {
        printf("%s\n", empty);
    } else {
        table(items);
        fflush(stdout);
        if (next)
            fprintf(stderr, "(more%s%s: use --all to list every page)\n", what ? " " : "",
                    what ? what : "");
    }
    free(next);
    json_decref(items);
    return 0;
}

int kw_cli_list_exec(kw_cli_t *cli, const kw_cli_args_t *a)
{
    const kw_cli_cmd_t *c = cli->cmd;

    return kw_cli_list_cmd(cli, a, show_row_path(cli, a), c->table, c->empty, c->what);
}
