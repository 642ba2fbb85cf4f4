/* contacts.c - what a credential's alert contacts must satisfy beyond their JSON shape
 * (h_creds.c checks that): webhook URLs pass the SSRF guard, a given signing secret is a
 * whsec_ secret, and a webhook given without one keeps the one it had (same URL) or gets a
 * fresh one, returned once to the caller as "signing_secrets". Must not: log a secret. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/key.h"
#include "core/sink.h"
#include "core/util.h"
#include "contacts.h"
#include "urlguard.h"

#define WHSEC_BYTES 32

static const char *old_secret(json_t *old, const char *url)
{
    size_t i;
    json_t *o;
    json_array_foreach(old, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "type"));
        const char *u = json_string_value(json_object_get(o, "url"));
        if (t && u && strcmp(t, "webhook") == 0 && strcmp(u, url) == 0)
            return json_string_value(json_object_get(o, "secret"));
    }
    return NULL;
}

int kw_contacts_prepare(kw_server_t *srv, char **text, const char *existing_json,
                        json_t **generated, kw_resp_t *rs)
{
    json_t *a = json_loads(*text ? *text : "[]", 0, NULL);
    json_t *old = existing_json ? json_loads(existing_json, 0, NULL) : NULL;
    json_t *gen = NULL;
    int rc = -1;
    size_t i;
    json_t *o;
    *generated = NULL;
    if (!json_is_array(a)) {
        kw_resp_error(rs, KW_EINVAL, "contacts", "contacts must be an array");
        goto out;
    }
    json_array_foreach(a, i, o)
    {
        const char *t = json_string_value(json_object_get(o, "type"));
        if (t == NULL)
            continue;
        if (strcmp(t, "email") == 0) {
            const char *to = json_string_value(json_object_get(o, "to"));
            if (to == NULL || !kw_sink_addr_ok(to, strlen(to))) {
                kw_resp_error(rs, KW_EINVAL, "contacts",
                              "contacts[%zu]: 'to' must be one address like ops@example.com", i);
                goto out;
            }
            continue;
        }
        if (strcmp(t, "webhook") != 0)
            continue;
        const char *url = json_string_value(json_object_get(o, "url"));
        char why[200];
        if (url == NULL || !kw_sink_url_ok(url, strlen(url))) {
            kw_resp_error(rs, KW_EINVAL, "contacts",
                          "contacts[%zu]: url must be http(s)://HOST[:PORT][/PATH] without "
                          "user:password@",
                          i);
            goto out;
        }
        /* a host that does not resolve (yet) is accepted: delivery checks it again */
        int r = kw_url_allowed(url, srv->cfg.webhook_allow_private, why, sizeof(why), NULL, 0, NULL,
                               NULL, 0);
        if (r != 0 && r != KW_ENOTFOUND) {
            kw_resp_error(rs, KW_EINVAL, "contacts", "contacts[%zu]: %s", i, why);
            goto out;
        }
        json_t *sec = json_object_get(o, "secret");
        if (sec) {
            const char *sv = json_string_value(sec);
            if (sv == NULL || !kw_sink_secret_decode(sv, strlen(sv), NULL, NULL)) {
                kw_resp_error(rs, KW_EINVAL, "contacts",
                              "contacts[%zu]: secret must be whsec_ + base64 of 16 to 64 bytes "
                              "(or leave it out and keyward generates one)",
                              i);
                goto out;
            }
            continue;
        }
        const char *keep = old ? old_secret(old, url) : NULL;
        if (keep) {
            json_object_set_new(o, "secret", json_string(keep));
            continue;
        }
        uint8_t raw[WHSEC_BYTES];
        char b64[64], whsec[80];
        if (kw_random(raw, sizeof(raw)) != 0) {
            kw_resp_error(rs, KW_EINTERNAL, NULL, "could not read the system random source");
            goto out;
        }
        kw_base64(raw, sizeof(raw), b64);
        snprintf(whsec, sizeof(whsec), "whsec_%s", b64);
        kw_wipe(raw, sizeof(raw));
        json_object_set_new(o, "secret", json_string(whsec));
        if (gen == NULL)
            gen = json_array();
        json_array_append_new(gen, json_pack("{s:s, s:s}", "url", url, "signing_secret", whsec));
        kw_wipe(whsec, sizeof(whsec));
        kw_wipe(b64, sizeof(b64));
    }
    char *nt = json_dumps(a, JSON_COMPACT);
    if (nt == NULL) {
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
        goto out;
    }
    free(*text);
    *text = nt;
    *generated = gen;
    gen = NULL;
    rc = 0;
out:
    json_decref(gen);
    json_decref(a);
    json_decref(old);
    return rc;
}

void kw_contacts_attach(kw_resp_t *rs, json_t *generated)
{
    if (generated == NULL)
        return;
    if (rs->status >= 200 && rs->status < 300 && rs->body) {
        json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
        if (json_is_object(j)) {
            json_object_set(j, "signing_secrets", generated);
            char *nb = json_dumps(j, JSON_COMPACT);
            if (nb) {
                kw_wipe(rs->body, rs->len);
                free(rs->body);
                rs->body = nb;
                rs->len = strlen(nb);
            }
        }
        json_decref(j);
    }
    json_decref(generated);
}
