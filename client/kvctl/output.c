/* client/kvctl/output.c -- results as text lines or one JSON object per line.
 *
 * (1) JSON strings must be valid UTF-8, keys and values need not be: a string that is
 *     not valid UTF-8 (or any string under --hex) is emitted as "key_hex"/"value_hex"
 *     instead of "key"/"value", so no byte is ever lost or replaced.
 * (2) Data goes to stdout, diagnostics to stderr; in JSON mode errors are data too (one
 *     object on stdout) so a consumer reads a single stream. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "client/kvctl/kvctl.h"

/* Sets obj[name] (or obj[name_hex]) to the bytes. */
static void set_bytes(json_t *obj, const char *name, const uint8_t *p, size_t n, bool hex)
{
    json_t *s = hex ? NULL : json_stringn((const char *)p, n);
    if (s) {
        json_object_set_new(obj, name, s);
        return;
    }
    char key[32];
    snprintf(key, sizeof key, "%s_hex", name);
    char *h = kvctl_hex_string(p, n);
    json_object_set_new(obj, key, h ? json_string(h) : json_null());
    free(h);
}

static void emit(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(obj);
}

static void write_bytes(const struct kvctl_out *o, const uint8_t *p, size_t n)
{
    if (o->hex)
        kvctl_write_hex(stdout, p, n);
    else
        kvctl_write_escaped(stdout, p, n);
}

void kvctl_print_item(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen)
{
    if (o->json) {
        json_t *obj = json_object();
        set_bytes(obj, "key", key, klen, o->hex);
        if (val)
            set_bytes(obj, "value", val, vlen, o->hex);
        emit(obj);
        return;
    }
    write_bytes(o, key, klen);
    if (val) {
        fputc('\t', stdout);
        write_bytes(o, val, vlen);
    }
    fputc('\n', stdout);
}

void kvctl_print_value(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen)
{
    if (o->json) {
        kvctl_print_item(o, key, klen, val, vlen);
        return;
    }
    write_bytes(o, val, vlen);
    fputc('\n', stdout);
}

void kvctl_print_ok(const struct kvctl_out *o)
{
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "ok", json_true());
        emit(obj);
    }
}

void kvctl_print_cursor(const struct kvctl_out *o, const uint8_t *cur, size_t n)
{
    char *h = kvctl_hex_string(cur, n);
    if (!h)
        return;
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "cursor", json_string(h));
        emit(obj);
    } else {
        fprintf(stderr, "cursor: %s\n", h);
    }
    free(h);
}

void kvctl_print_error(const struct kvctl_out *o, const char *name, const char *msg)
{
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "error", json_string(name));
        /* Server messages are usually ASCII; if one is not UTF-8, keep the code alone. */
        json_t *m = json_string(msg);
        json_object_set_new(obj, "message", m ? m : json_string("(message not UTF-8)"));
        emit(obj);
    } else {
        fprintf(stderr, "kvctl: %s: %s\n", name, msg);
    }
}
