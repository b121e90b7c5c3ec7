/* common/buf.c -- owned buffer helpers. */
#include "common/buf.h"
#include <stdlib.h>

void kv_buf_free(struct kv_buf *b)
{
    if (!b || !b->ptr)
        return;
    if (b->free_fn)
        b->free_fn(b->ptr);
    else
        free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->free_fn = NULL;
}

int kv_buf_copy(struct kv_buf *b, struct kv_slice s)
{
    void *p = malloc(s.len ? s.len : 1);
    if (!p)
        return -1;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    b->ptr = p;
    b->len = s.len;
    b->free_fn = NULL;
    return 0;
}

int kv_vec_reserve(struct kv_vec *v, size_t extra)
{
    if (v->cap - v->len >= extra)
        return 0;
    size_t need = v->len + extra;
    if (need < v->len)
        return -1;
    size_t cap = v->cap ? v->cap : 256;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    uint8_t *p = realloc(v->ptr, cap);
    if (!p)
        return -1;
    v->ptr = p;
    v->cap = cap;
    return 0;
}

int kv_vec_append(struct kv_vec *v, const void *p, size_t n)
{
    if (kv_vec_reserve(v, n) != 0)
        return -1;
    if (n)
        memcpy(v->ptr + v->len, p, n);
    v->len += n;
    return 0;
}

void kv_vec_consume(struct kv_vec *v, size_t n)
{
    if (n >= v->len) {
        v->len = 0;
        return;
    }
    memmove(v->ptr, v->ptr + n, v->len - n);
    v->len -= n;
}

void kv_vec_free(struct kv_vec *v)
{
    free(v->ptr);
    v->ptr = NULL;
    v->len = v->cap = 0;
}
