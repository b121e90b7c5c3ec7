/* tests/fuzz/replay.c -- runs a fuzz target's LLVMFuzzerTestOneInput over files, without
 * libFuzzer: the default (gcc) test build replays every committed corpus and every crash
 * reproducer with this driver, under the same sanitizers as the rest of the suite.
 *
 * Usage: fuzz_TARGET DIR|FILE...  -- every regular file of each directory (sorted by name,
 * dot files skipped) is one input. A directory that does not exist counts as empty (a
 * target with no reproducers yet has no crashes/ directory in git).
 * (1) Each file is copied into a buffer of exactly its size, so a read past the end of an
 *     input is caught by ASan as it would be under libFuzzer.
 * (2) Exit status 0 only when at least one input ran: an empty corpus is a broken test,
 *     not a passing one. A crash aborts the process (sanitizers, abort_on_error). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return -1;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    /* (1): a zero-length input is passed as a non-NULL pointer of size 0, as libFuzzer does. */
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int skip_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

int main(int argc, char **argv)
{
    size_t ran = 0;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            printf("replay: %s: absent (no inputs)\n", argv[i]);
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            bad |= run_file(argv[i]) != 0;
            ran++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, skip_dot, alphasort);
        if (n < 0) {
            fprintf(stderr, "replay: cannot list %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        size_t here = 0;
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                bad |= run_file(path) != 0;
                here++;
            }
            free(names[j]);
        }
        free(names);
        printf("replay: %s: %zu inputs\n", argv[i], here);
        ran += here;
    }
    if (bad)
        return 1;
    if (ran == 0) {
        fprintf(stderr, "replay: no inputs at all (2)\n");
        return 1;
    }
    printf("replay: %zu inputs, no crash\n", ran);
    return 0;
}
