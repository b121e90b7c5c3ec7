/* client/kvctl/escape.c -- byte strings to and from the command line.
 *
 * (1) Escaping is reversible: kvctl_decode_arg(text written by kvctl_write_escaped)
 *     gives back the same bytes, so an escaped key printed by "scan" can be pasted into
 *     "get" unchanged.
 * (2) TAB and newline are always escaped in text output, so "key<TAB>value" lines split
 *     unambiguously whatever the bytes are. */
#include <stdlib.h>
#include <string.h>
#include "client/kvctl/kvctl.h"

void kvctl_bytes_free(struct kvctl_bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kvctl_decode_arg(const char *s, bool hex, struct kvctl_bytes *out, char *why)
{
    size_t n = strlen(s);
    out->p = malloc(n + 1);   /* decoding never grows a string */
    out->len = 0;
    if (!out->p) {
        strcpy(why, "out of memory");
        return -1;
    }
    if (hex) {
        if (n % 2) {
            strcpy(why, "hex string has an odd number of digits");
            goto fail;
        }
        for (size_t i = 0; i < n; i += 2) {
            int hi = hexval(s[i]), lo = hexval(s[i + 1]);
            if (hi < 0 || lo < 0) {
                strcpy(why, "not a hex string");
                goto fail;
            }
            out->p[out->len++] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '\\') {
                out->p[out->len++] = (uint8_t)s[i];
                continue;
            }
            if (s[i + 1] == '\\') {
                out->p[out->len++] = '\\';
                i++;
                continue;
            }
            int hi, lo;
            if (s[i + 1] != 'x' || (hi = hexval(s[i + 2])) < 0 || (lo = hexval(s[i + 3])) < 0) {
                strcpy(why, "bad escape: use \\xNN for a byte or \\\\ for a backslash");
                goto fail;
            }
            out->p[out->len++] = (uint8_t)(hi << 4 | lo);
            i += 3;
        }
    }
    out->p[out->len] = '\0';
    return 0;
fail:
    kvctl_bytes_free(out);
    return -1;
}

void kvctl_write_escaped(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\\')
            fputs("\\\\", f);
        else if (c >= 0x20 && c <= 0x7e)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

void kvctl_write_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

char *kvctl_hex_string(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

int kvctl_prefix_end(const struct kvctl_bytes *p, struct kvctl_bytes *end)
{
    size_t n = p->len;
    while (n && p->p[n - 1] == 0xff)
        n--;
    end->p = malloc(n + 1);
    end->len = 0;
    if (!end->p)
        return -1;
    if (n) {
        memcpy(end->p, p->p, n);
        end->p[n - 1]++;
        end->len = n;
    }
    end->p[end->len] = '\0';
    return 0;
}
