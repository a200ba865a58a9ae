/* libFuzzer target for the Alt-Svc filter weir applies to a backend's
 * Alt-Svc field (weir_alt_svc_keep): whatever the value, the output stays
 * inside its buffer, every kept alternative is a non-empty piece of the
 * input without surrounding whitespace, and none of them is h3, h3-* or
 * clear (weir's own entry is the only HTTP/3 advertisement). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/conn.h"

#define CHECK(c)      \
    do {              \
        if (!(c))     \
            abort();  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[2048];
    static const char own[] = "h3=\":443\"; ma=2592000";
    for (size_t cap = sizeof own; cap <= sizeof buf; cap += sizeof buf / 2) {
        memcpy(buf, own, sizeof own - 1);
        size_t len = weir_alt_svc_keep(weir_slice((const char *)data, size), buf, sizeof own - 1, cap);
        CHECK(len >= sizeof own - 1 && len <= cap);
        CHECK(memcmp(buf, own, sizeof own - 1) == 0);
        size_t i = sizeof own - 1;
        while (i < len) {
            CHECK(len - i > 2 && buf[i] == ',' && buf[i + 1] == ' ');
            i += 2;
            /* an alternative ends at the next ", " that starts another one
             * found in the input: check the protocol id only */
            size_t id = i;
            while (id < len && buf[id] != '=' && buf[id] != ';' && buf[id] != ' ' && buf[id] != ',')
                id++;
            size_t n = id - i;
            CHECK(n > 0 || buf[i] == '=' || buf[i] == ';' || buf[i] == '"');
            CHECK(!(n == 2 && memcmp(buf + i, "h3", 2) == 0));
            CHECK(!(n > 3 && memcmp(buf + i, "h3-", 3) == 0));
            CHECK(!(n == 5 && strncasecmp(buf + i, "clear", 5) == 0));
            CHECK(buf[i] != ' ' && buf[i] != '\t');
            /* skip to the next separator outside quotes */
            int quoted = 0;
            for (; i < len; i++) {
                if (buf[i] == '"')
                    quoted = !quoted;
                else if (quoted && buf[i] == '\\' && i + 1 < len)
                    i++;
                else if (!quoted && buf[i] == ',' && i + 1 < len && buf[i + 1] == ' ')
                    break;
            }
        }
    }
    return 0;
}
