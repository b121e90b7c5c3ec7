/* tests/fuzz/client_resp.c -- fuzz target: a hostile server, as libkvclient reads it.
 *
 * The input is the server-to-client byte stream (fuzz_util.h): frames cut by
 * kv_frame_decode, each payload decoded by kv_codec_decode_resp, then handed to
 * kvc__op_fill for every kind of operation the answer could belong to (get, put, delete,
 * scan, cas and the ring refresh), which unpacks LZ4 values (kv_codec_value_unpack) and
 * copies the results out; a cluster status then builds the routing ring as a refresh
 * does (kvc__ring_build) and routes a few keys through it.
 * Properties checked besides "no crash, no sanitizer report":
 * (1) an op's result status is a known code, and OK results hold no value over max_value;
 * (2) every range the ring finds is one of the ring's ranges. */
#include <stdio.h>
#include "client/internal.h"
#include "proto/codec.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_FRAME (4u << 20)       /* kvc_opts_default: max_frame, also the value bound */

static void fill_and_free(enum kvc_op_type type, const Kv__Response *resp)
{
    struct kvc_op op;
    memset(&op, 0, sizeof op);
    op.type = type;
    op.key = "k";
    op.key_len = 1;
    kvc__op_fill(&op, resp, MAX_FRAME);
    FUZZ_CHECK(op.err.code <= 0 && op.err.code > -100);             /* (1) */
    if (op.err.code == KVC_OK) {
        FUZZ_CHECK(op.result.len <= MAX_FRAME);
        for (size_t i = 0; i < op.scan_result.n; i++)
            FUZZ_CHECK(op.scan_result.items[i].value_len <= MAX_FRAME);
    }
    kvc_value_free(&op.result);
    kvc_scan_result_free(&op.scan_result);
}

static void status_and_ring(const Kv__Response *resp)
{
    struct kvc__status_op sop;
    memset(&sop, 0, sizeof sop);
    sop.op.type = KVC__OP_STATUS;
    kvc__op_fill(&sop.op, resp, MAX_FRAME);
    if (sop.op.err.code == KVC_OK) {
        struct kvc__ring ring = {0};
        if (kvc__ring_build(&sop.st, &ring) == KVC_OK) {
            const char *keys[] = {"", "a", "m", "zzzz", "\xff\xff"};
            for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
                const struct kvc__range *r = kvc__ring_find(&ring, keys[i], strlen(keys[i]));
                FUZZ_CHECK(ring.n == 0 ? r == NULL : (r >= ring.ranges && r < ring.ranges + ring.n));
            }
            kvc__ring_free(&ring);
        }
        kvc_cluster_status_free(&sop.st);
    }
}

static void on_frame(void *arg, struct kv_slice payload)
{
    (void)arg;
    Kv__Response *resp = NULL;
    struct kv_err err = {0};
    if (kv_codec_decode_resp(payload, &resp, &err) != KV_OK) {
        FUZZ_CHECK(resp == NULL && err.code == KV_PROTO);
        return;
    }
    FUZZ_CHECK(resp != NULL);
    fill_and_free(KVC_OP_GET, resp);
    fill_and_free(KVC_OP_PUT, resp);
    fill_and_free(KVC_OP_DELETE, resp);
    fill_and_free(KVC_OP_SCAN, resp);
    fill_and_free(KVC_OP_CAS, resp);
    status_and_ring(resp);
    kv__response__free_unpacked(resp, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frames(data, size, MAX_FRAME, on_frame, NULL);
    return 0;
}
