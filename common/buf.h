/* common/buf.h -- borrowed slices and owned buffers.
 *
 * (1) A kv_slice is borrowed for the duration of a call; a callee that keeps it copies it.
 * (2) A kv_buf owns ptr and releases it with free_fn (NULL free_fn means free()). */
#ifndef KV_COMMON_BUF_H
#define KV_COMMON_BUF_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct kv_slice {
    const void *ptr;
    size_t len;
};

struct kv_buf {
    void *ptr;
    size_t len;
    void (*free_fn)(void *);
};

static inline struct kv_slice kv_slice_of(const void *p, size_t n)
{
    struct kv_slice s = {p, n};
    return s;
}
static inline struct kv_slice kv_slice_str(const char *s)
{
    return kv_slice_of(s, s ? strlen(s) : 0);
}
/* memcmp order; a shorter key that is a prefix of a longer one sorts first. */
static inline int kv_slice_cmp(struct kv_slice a, struct kv_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}
static inline struct kv_slice kv_buf_slice(const struct kv_buf *b)
{
    return kv_slice_of(b->ptr, b->len);
}
/* A growable byte vector: ptr[0..len) is data, cap is allocated. Owned; kv_vec_free. */
struct kv_vec {
    uint8_t *ptr;
    size_t len;
    size_t cap;
};
/* Ensures room for extra more bytes; returns -1 when out of memory (v unchanged). */
int kv_vec_reserve(struct kv_vec *v, size_t extra);
int kv_vec_append(struct kv_vec *v, const void *p, size_t n);
/* Drops the first n bytes (n <= len), keeping the rest at the front. */
void kv_vec_consume(struct kv_vec *v, size_t n);
void kv_vec_free(struct kv_vec *v);

/* Releases b's memory and resets it to empty. NULL and empty buffers are no-ops. */
void kv_buf_free(struct kv_buf *b);
/* On 0 b owns a copy of s. Returns -1 when out of memory. */
int kv_buf_copy(struct kv_buf *b, struct kv_slice s);
#endif
