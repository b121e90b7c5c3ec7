/* client/kvctl/kvctl.h -- what the files of kvctl share.
 *
 * kvctl is built on libkvclient alone (plus jansson for --json): it never includes
 * common/ or proto/, so it doubles as a check that the public header is enough.
 * (1) Exit codes are a contract with scripts (docs/kvctl.md): 0 success, 1 not found,
 *     2 usage, 3 connection, 4 timeout, 5 unavailable/overloaded/shutting down,
 *     6 any other error reported by the server or the protocol.
 * (2) Keys and values are byte strings. On the command line and in text output they use
 *     one escape syntax (\xNN and \\) or, with --hex, plain hex; never a lossy form. */
#ifndef KV_CLIENT_KVCTL_H
#define KV_CLIENT_KVCTL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum kvctl_exit {
    KVCTL_EXIT_OK = 0,
    KVCTL_EXIT_NOT_FOUND = 1,
    KVCTL_EXIT_USAGE = 2,
    KVCTL_EXIT_CONN = 3,
    KVCTL_EXIT_TIMEOUT = 4,
    KVCTL_EXIT_UNAVAILABLE = 5,
    KVCTL_EXIT_SERVER = 6
};

/* A malloc'd byte string, NUL-terminated for convenience (not counted). */
struct kvctl_bytes {
    uint8_t *p;
    size_t len;
};
void kvctl_bytes_free(struct kvctl_bytes *b);

/* --- escape.c --------------------------------------------------------------------------- */

/* Decodes an argument: with hex, pairs of hex digits; otherwise text in which \xNN is a
 * byte and \\ a backslash. 0 on success; -1 with a message in why (at least 96 bytes). */
int kvctl_decode_arg(const char *s, bool hex, struct kvctl_bytes *out, char *why);
/* Writes p[0..n) escaped: bytes 0x20..0x7e other than '\' as themselves, '\' as \\,
 * everything else as \xNN (lower-case hex). */
void kvctl_write_escaped(FILE *f, const uint8_t *p, size_t n);
void kvctl_write_hex(FILE *f, const uint8_t *p, size_t n);
/* A malloc'd NUL-terminated lower-case hex string of p[0..n); NULL if out of memory. */
char *kvctl_hex_string(const uint8_t *p, size_t n);
/* The smallest key greater than every key starting with p: the prefix with its last
 * non-0xff byte incremented and the 0xff bytes after it dropped. Empty (len 0) when p
 * is empty or all 0xff: the range then runs to the last key. */
int kvctl_prefix_end(const struct kvctl_bytes *p, struct kvctl_bytes *end);

/* --- output.c --------------------------------------------------------------------------- */

struct kvctl_out {
    bool json;
    bool hex;
};
/* One key (and value, unless val is NULL) as text "key<TAB>value" or a JSON object. */
void kvctl_print_item(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen);
/* A get's value: text prints the value alone; JSON prints {"key":..,"value":..}. */
void kvctl_print_value(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen);
/* `get --local`: text as kvctl_print_value; JSON adds "version" (HLC), "version_node" and
 * "expires_at_ms" (when set), so two replicas' records can be compared. */
struct kvc_value;
void kvctl_print_record(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                        const struct kvc_value *v);
void kvctl_print_ok(const struct kvctl_out *o);
/* Scan resume point: text "cursor: HEX" on stderr, JSON {"cursor":"HEX"} on stdout. */
void kvctl_print_cursor(const struct kvctl_out *o, const uint8_t *cur, size_t n);
/* An error: text "kvctl: NAME: message" on stderr, JSON {"error":..,"message":..} on
 * stdout. */
void kvctl_print_error(const struct kvctl_out *o, const char *name, const char *msg);

/* `kvctl status`: a table with a header line (text), or one object per node (JSON). */
struct kvc_cluster_status;
void kvctl_print_status(const struct kvctl_out *o, const struct kvc_cluster_status *st);
/* `kvctl ring`: the ranges sorted by start key, "(start, end] -> [2,3,1]" each (text),
 * or one {"start","end","replicas"} object per range (JSON). Sorts st->ranges. */
void kvctl_print_ring(const struct kvctl_out *o, struct kvc_cluster_status *st);

/* --- help.c ----------------------------------------------------------------------------- */

/* Prints the help of cmd (NULL or unknown: the global help) to f. */
void kvctl_help(FILE *f, const char *cmd);
#endif
