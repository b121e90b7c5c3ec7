/* proto/arena.c -- the budgeted bump allocator behind proto/arena.h. */
#include "proto/arena.h"
#include <stdlib.h>

#define ALIGN 16u
#define CHUNK_MIN 16384u

struct kv_pb_arena_chunk {
    struct kv_pb_arena_chunk *next;
    _Alignas(16) uint8_t data[];
};

static void *arena_alloc(void *ctx, size_t size)
{
    struct kv_pb_arena *a = ctx;
    size_t n = (size + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
    if (n < size || n > a->budget - a->used) {
        a->refused = true;
        return NULL;
    }
    if (n > a->left) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        struct kv_pb_arena_chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = a->chunks;
        a->chunks = c;
        a->cur = c->data;
        a->left = cap;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    a->used += n;
    return p;
}

static void arena_free(void *ctx, void *p)
{
    (void)ctx;   /* (2): released together at the next begin */
    (void)p;
}

static void release_chunks(struct kv_pb_arena *a)
{
    while (a->chunks) {
        struct kv_pb_arena_chunk *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
}

void kv_pb_arena_init(struct kv_pb_arena *a)
{
    a->pb.alloc = arena_alloc;
    a->pb.free = arena_free;
    a->pb.allocator_data = a;
    a->chunks = NULL;
    kv_pb_arena_begin(a, 0);
}

void kv_pb_arena_begin(struct kv_pb_arena *a, size_t budget)
{
    release_chunks(a);
    a->budget = budget;
    a->used = 0;
    a->refused = false;
    a->cur = a->inline_buf;
    a->left = sizeof a->inline_buf;
}

void kv_pb_arena_destroy(struct kv_pb_arena *a)
{
    release_chunks(a);
    a->cur = NULL;
    a->left = 0;
}
