/* storage/rocks.c -- the one place a RocksDB error string becomes a kv_err.
 *
 * (1) RocksDB reports errors as a malloc'd "<Code>: <detail>" string through char **errptr;
 *     this file is the only one that reads those strings, so the mapping cannot drift.
 * (2) The string is always freed here, and *errptr reset, so a caller can reuse it.
 * (3) A full disk is KV_NOSPACE, never plain KV_IOERR, so clients and operators can tell
 *     "free some space" from "the disk is failing". RocksDB words it "IO error: No space
 *     left on device: ..." (IOStatus::NoSpace, or the ENOSPC text of a failed append) or
 *     "... Space limit reached" (an SstFileManager size cap); a stopped DB answers every
 *     later write with that same first error. */
#include <string.h>
#include "storage/store_int.h"

static enum kv_status map_code(const char *msg)
{
    if (strncmp(msg, "Corruption", 10) == 0)
        return KV_CORRUPTION;
    if (strncmp(msg, "Result incomplete", 17) == 0)
        return KV_AGAIN;
    if (strstr(msg, "No space left on device") != NULL || strstr(msg, "Space limit reached"))
        return KV_NOSPACE;
    if (strncmp(msg, "IO error", 8) == 0)
        return KV_IOERR;
    return KV_INTERNAL;
}

enum kv_status kv_store__rocks_err(char **errptr, struct kv_err *err, const char *what)
{
    const char *msg = *errptr ? *errptr : "unknown rocksdb error";
    enum kv_status code = map_code(msg);
    kv_err_set(err, code, "%s: %s", what, msg);
    rocksdb_free(*errptr);
    *errptr = NULL;
    return code;
}
