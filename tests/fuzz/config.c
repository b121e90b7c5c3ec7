/* tests/fuzz/config.c -- fuzz target: the config file parser (server/config.c over inih).
 *
 * The input is a whole config file. It goes through kv_config_load_file exactly as kvd
 * reads --config (from a memfd, by its /proc path, so inih's own reading is fuzzed too),
 * then kv_config_validate; the list settings of a config that loads are split again with
 * kv_config_tokens and kv_config_seeds into buffers of exactly the documented minimum size
 * (config.h: strlen(spec) bytes, strlen(spec)+1 for seeds), so an overrun that the large
 * buffers inside kv_config_validate would hide is caught.
 * Properties checked besides "no crash, no sanitizer report":
 * (1) an error is KV_INVALID or KV_NOMEM and names what failed (a non-empty message);
 * (2) every string setting stays NUL-terminated inside its array;
 * (3) split tokens lie inside the buffer and are 1..KV_CONFIG_MAX_TOKEN_LEN bytes. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "server/config.h"
#include "tests/fuzz/fuzz_util.h"

static int g_fd = -1;
static char g_path[64];

#define TERMINATED(field) FUZZ_CHECK(memchr(c.field, '\0', sizeof c.field) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        g_fd = memfd_create("kvd-fuzz-config", 0);
        FUZZ_CHECK(g_fd >= 0);
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    FUZZ_CHECK(ftruncate(g_fd, 0) == 0);
    FUZZ_CHECK(pwrite(g_fd, data, size, 0) == (ssize_t)size);

    struct kv_config c;
    kv_config_default(&c);
    struct kv_err err = {0};
    enum kv_status st = kv_config_load_file(&c, g_path, &err);
    if (st != KV_OK) {
        FUZZ_CHECK(st == KV_INVALID || st == KV_NOMEM);            /* (1) */
        FUZZ_CHECK(err.msg[0] != '\0');
    }
    TERMINATED(listen);                                            /* (2) */
    TERMINATED(http);
    TERMINATED(data_dir);
    TERMINATED(advertise);
    TERMINATED(seeds);
    TERMINATED(region);
    TERMINATED(rack);
    TERMINATED(tokens);
    struct kv_err verr = {0};
    enum kv_status vst = kv_config_validate(&c, &verr);
    if (vst != KV_OK)
        FUZZ_CHECK(vst == KV_INVALID && verr.msg[0] != '\0');
    (void)kv_config_advertise(&c);

    size_t tl = strlen(c.tokens);
    uint8_t *tbuf = malloc(tl ? tl : 1);
    struct kv_slice *toks = malloc(KV_CONFIG_MAX_TOKENS * sizeof *toks);
    size_t nt = 0;
    if (kv_config_tokens(c.tokens, tbuf, toks, &nt, NULL) == KV_OK) {
        FUZZ_CHECK(nt <= KV_CONFIG_MAX_TOKENS);
        for (size_t i = 0; i < nt; i++) {                          /* (3) */
            FUZZ_CHECK(toks[i].len >= 1 && toks[i].len <= KV_CONFIG_MAX_TOKEN_LEN);
            FUZZ_CHECK((const uint8_t *)toks[i].ptr >= tbuf &&
                       (const uint8_t *)toks[i].ptr + toks[i].len <= tbuf + tl);
        }
    }
    free(tbuf);
    free(toks);

    size_t sl = strlen(c.seeds);
    char *sbuf = malloc(sl + 1);
    const char *seeds[65];
    size_t ns = 0;
    if (kv_config_seeds(c.seeds, sbuf, seeds, 64, &ns, NULL) == KV_OK) {
        FUZZ_CHECK(ns <= 64 && seeds[ns] == NULL);
        for (size_t i = 0; i < ns; i++)
            FUZZ_CHECK(seeds[i] >= sbuf && seeds[i] + strlen(seeds[i]) <= sbuf + sl);
    }
    free(sbuf);
    unsigned lvl;
    (void)kv_config_level_parse(c.region, &lvl);
    return 0;
}
