/* server/main.c -- the kvd executable: settings, logging, then one node's lifetime. */
#include <signal.h>
#include <stdio.h>
#include "common/clock.h"
#include "common/log.h"
#include "server/config.h"
#include "server/server.h"

int main(int argc, char **argv)
{
    struct kv_config cfg;
    kv_config_default(&cfg);
    struct kv_err err = {0};
    bool help;
    enum kv_status st = kv_config_parse_args(&cfg, argc, argv, &help, &err);
    if (help) {
        kv_config_usage(stdout, argv[0]);
        return 0;
    }
    if (st == KV_OK)
        st = kv_config_validate(&cfg, &err);
    if (st != KV_OK) {
        fprintf(stderr, "kvd: %s\n(see kvd --help)\n", err.msg);
        return 2;
    }
    kv_log_set_level(cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    if (cfg.debug_clock_offset_ms != 0) {
        /* Test only (validated: needs debug = true). Set before the store opens, so the
         * generation, every HLC stamp and every TTL read this node's skewed clock. */
        kv_clock_set_offset_ms(cfg.debug_clock_offset_ms);
        KV_WARN("debug: wall clock offset %lld ms (test-only setting)",
                (long long)cfg.debug_clock_offset_ms);
    }

    static struct kv_server srv;
    st = kv_server_init(&srv, &cfg, &err);
    if (st != KV_OK) {
        KV_ERROR("cannot start: %s", err.msg);
        return 1;
    }
    KV_INFO("kvd node %u listening on %s (http %s), data in %s, sync=%s", cfg.node_id,
            cfg.listen, cfg.http, cfg.data_dir, kv_sync_name(cfg.sync));
    kv_server_run(&srv);
    kv_server_destroy(&srv);
    KV_INFO("kvd node %u stopped", cfg.node_id);
    return 0;
}
