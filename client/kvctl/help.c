/* client/kvctl/help.c -- the --help texts. Kept in step with docs/kvctl.md. */
#include <string.h>
#include "client/kvctl/kvctl.h"

static const char global_help[] =
    "usage: kvctl [global options] <command> [args]\n"
    "\n"
    "Commands:\n"
    "  put KEY [VALUE]   store a value (from VALUE, --file, or stdin)\n"
    "  get KEY           print a value\n"
    "  del KEY           delete a key (deleting a missing key succeeds)\n"
    "  cas KEY --expect V | --expect-absent [VALUE]\n"
    "                    compare-and-set (Paxos; always linearizable)\n"
    "  scan              list keys in order, a page at a time or --all\n"
    "  status            the cluster's nodes as one node sees them\n"
    "  ring              the key ranges in order, with their replicas\n"
    "  help [COMMAND]    this text, or a command's\n"
    "Run 'kvctl COMMAND --help' for a command's options.\n"
    "\n"
    "Global options (before or after the command):\n"
    "  -n, --nodes HOST:PORT,...  servers to try in order; the first that answers\n"
    "                             coordinates the request (default: $KVD_NODES,\n"
    "                             else 127.0.0.1:7379)\n"
    "  -c, --consistency LEVEL    default one two three quorum all local_one\n"
    "                             local_quorum each_quorum linearizable\n"
    "      --timeout MS           per-request and connect timeout (default 5000)\n"
    "      --json                 one JSON object per result on stdout\n"
    "      --hex                  keys and values as hex, in arguments and output\n"
    "  -h, --help                 show help\n"
    "\n"
    "Keys and values are byte strings. In arguments and text output a byte can be\n"
    "written \\xNN and a backslash is \\\\; output escapes every byte outside 0x20..0x7e.\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  key not found (get); not applied (cas)\n"
    "  2  usage error (bad option, bad argument, empty or oversized key)\n"
    "  3  connection error (no server reachable, or the connection broke:\n"
    "     a write may or may not have been applied)\n"
    "  4  timeout (outcome unknown: a write may have been applied)\n"
    "  5  unavailable, overloaded or shutting down (not applied; retry later)\n"
    "  6  any other error from the server or the protocol\n";

static const char put_help[] =
    "usage: kvctl put KEY [VALUE] [--file F] [--ttl SECONDS | --ttl-ms MS]\n"
    "\n"
    "Stores VALUE under KEY. Without VALUE, or with VALUE '-', the value is read from\n"
    "stdin; with --file it is read from F. File and stdin bytes are taken as they are\n"
    "(no escapes, no hex).\n"
    "\n"
    "  -f, --file F       read the value from file F\n"
    "      --ttl SECONDS  expire the value after SECONDS\n"
    "      --ttl-ms MS    expire the value after MS milliseconds\n"
    "\n"
    "Prints nothing on success ({\"ok\":true} with --json).\n"
    "Examples:\n"
    "  kvctl put user:1 alice\n"
    "  kvctl put 'bin\\x00key' 'tab\\x09value'\n"
    "  kvctl put --ttl 60 session:9 < token.bin\n";

static const char get_help[] =
    "usage: kvctl get KEY [--raw] [--local]\n"
    "\n"
    "Prints the value stored under KEY, escaped, followed by a newline (hex with --hex;\n"
    "{\"key\":..,\"value\":..} with --json). Exits 1 when the key does not exist.\n"
    "\n"
    "      --raw     write the value's exact bytes, no escaping and no newline\n"
    "      --local   read only the first node's own store (no coordination, no other\n"
    "                replica, --consistency ignored); exit 3 if that node is unreachable\n"
    "\n"
    "Examples:\n"
    "  kvctl get user:1\n"
    "  kvctl get --raw blob:7 > blob.bin\n"
    "  kvctl --nodes 127.0.0.2:7379 get --local user:1\n";

static const char del_help[] =
    "usage: kvctl del KEY\n"
    "\n"
    "Deletes KEY. Deleting a key that does not exist succeeds (a tombstone is written\n"
    "either way). Prints nothing on success ({\"ok\":true} with --json).\n"
    "\n"
    "Example:\n"
    "  kvctl del user:1\n";

static const char scan_help[] =
    "usage: kvctl scan [--prefix P | --start S --end E] [--limit N] [--cursor C]\n"
    "                  [--all] [--keys-only]\n"
    "\n"
    "Lists keys in order, one 'key<TAB>value' line each (only the key with\n"
    "--keys-only). Without --all one page is printed; if more keys remain, a last line\n"
    "'cursor: HEX' goes to stderr (with --json, {\"cursor\":\"HEX\"} on stdout); pass it\n"
    "to --cursor to continue exactly after the last key printed.\n"
    "\n"
    "      --prefix P    keys that start with P\n"
    "      --start S     from S (inclusive)\n"
    "      --end E       to E (exclusive)\n"
    "      --limit N     page size (default: the server's)\n"
    "      --cursor C    resume after a previous page (C as printed, hex)\n"
    "      --all         follow cursors to the end of the range\n"
    "      --keys-only   do not fetch values\n"
    "\n"
    "Examples:\n"
    "  kvctl scan --prefix user: --all\n"
    "  kvctl scan --start a --end m --limit 100\n";

static const char status_help[] =
    "usage: kvctl status [--json]\n"
    "\n"
    "Prints every node of the cluster as the node kvctl reaches sees it: id, address,\n"
    "region, rack, up or down (its failure detector), phi (suspicion; higher is worse),\n"
    "number of tokens, approximate load, hints it holds for other nodes, status\n"
    "(normal, joining, leaving) and generation (bumped at every restart).\n"
    "With --json, one object per node with exact numbers; \"self\" marks the node that\n"
    "answered.\n"
    "\n"
    "Example:\n"
    "  kvctl --nodes 127.0.0.2:7379 status\n";

static const char cas_help[] =
    "usage: kvctl cas KEY (--expect V | --expect-absent) [VALUE] [--file F]\n"
    "\n"
    "Sets KEY to VALUE only if its current value is V (--expect) or it has none\n"
    "(--expect-absent), atomically, through per-key Paxos among the key's replicas. It is\n"
    "always linearizable: --consistency is ignored. VALUE is read as for put (argument,\n"
    "--file or stdin); V is an argument (escapes, or hex with --hex).\n"
    "\n"
    "Exit 0: applied (prints nothing; {\"ok\":true} with --json).\n"
    "Exit 1: not applied; prints the current value (as get does), or NOT_APPLIED when the\n"
    "        key has no value.\n"
    "Exit 4: timeout: unknown, the value may have been set. 5: unavailable, not set.\n"
    "Examples:\n"
    "  kvctl cas --expect-absent lock:1 owner-a\n"
    "  kvctl cas counter --expect 41 42\n";

static const char ring_help[] =
    "usage: kvctl ring [--json] [--hex]\n"
    "\n"
    "Prints the key ranges in key order, one line each:\n"
    "  (START, END] -> [2,3,1]\n"
    "the keys after START up to and including END live on those nodes, in preference\n"
    "order. An empty START means from the first key, an empty END to the last key.\n"
    "Keys are escaped as everywhere else (hex with --hex). With --json, one\n"
    "{\"start\":..,\"end\":..,\"replicas\":[..]} object per range.\n"
    "\n"
    "Example:\n"
    "  kvctl ring\n";

void kvctl_help(FILE *f, const char *cmd)
{
    const char *text = global_help;
    if (cmd && strcmp(cmd, "put") == 0)
        text = put_help;
    else if (cmd && strcmp(cmd, "get") == 0)
        text = get_help;
    else if (cmd && (strcmp(cmd, "del") == 0 || strcmp(cmd, "delete") == 0))
        text = del_help;
    else if (cmd && strcmp(cmd, "scan") == 0)
        text = scan_help;
    else if (cmd && strcmp(cmd, "status") == 0)
        text = status_help;
    else if (cmd && strcmp(cmd, "ring") == 0)
        text = ring_help;
    else if (cmd && strcmp(cmd, "cas") == 0)
        text = cas_help;
    fputs(text, f);
}
