/* proto/arena.h -- a byte-budgeted bump allocator for protobuf-c unpacking.
 *
 * (1) Between kv_pb_arena_begin and the next begin (or destroy) at most `budget` bytes are
 *     handed out; past it protobuf-c's allocation fails, so the unpack returns NULL and the
 *     decoder answers KV_TOO_LARGE. A small frame therefore never makes kvd allocate much,
 *     whatever repeated fields or nesting it announces.
 * (2) free is a no-op: everything an unpack allocated is released together by the next
 *     begin or by destroy. A message unpacked through an arena must not outlive that call
 *     and must never be passed to *__free_unpacked.
 * (3) The first KV_PB_ARENA_INLINE bytes come from the arena itself (no malloc), so the
 *     common small request costs no heap allocation at all.
 * Not thread-safe: one arena per thread (the server keeps one on its loop). */
#ifndef KV_PROTO_ARENA_H
#define KV_PROTO_ARENA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#define KV_PB_ARENA_INLINE 8192u

struct kv_pb_arena_chunk;

struct kv_pb_arena {
    ProtobufCAllocator pb;              /* pass &a->pb to *__unpack */
    size_t budget, used;                /* (1) */
    bool refused;                       /* an allocation hit the budget since begin */
    uint8_t *cur;                       /* bump pointer in the current block */
    size_t left;                        /* bytes left there */
    struct kv_pb_arena_chunk *chunks;   /* heap blocks beyond the inline one; owned */
    _Alignas(16) uint8_t inline_buf[KV_PB_ARENA_INLINE];
};

void kv_pb_arena_init(struct kv_pb_arena *a);
/* Releases everything handed out since the last begin and sets a new budget. */
void kv_pb_arena_begin(struct kv_pb_arena *a, size_t budget);
void kv_pb_arena_destroy(struct kv_pb_arena *a);

/* The budget a decoder should give a payload of n bytes. protobuf-c's in-memory form of a
 * message is a multiple of its wire size that is largest for many small submessages: a
 * scan reply's Record of an 8-byte key and value is ~30 bytes on the wire and ~130 in
 * memory (struct, two byte copies, a pointer, 16-byte alignment), a minimal legal one about
 * 10x; an empty one (a bomb) is 2 bytes for ~100. 16x keeps every legal message and refuses
 * the bombs; the constant covers the structs of a small message. */
static inline size_t kv_pb_arena_budget_for(size_t n) { return 16 * n + 65536; }
#endif
