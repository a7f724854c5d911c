/* libFuzzer target for the relaxed-JSON front end and spec validation
 * (src/rjson.c, src/spec.c): any input parses or fails with a message,
 * never crashes, never leaks; an accepted spec renders (masked and not)
 * and parses back to the same rendering; the channel-spec parser takes the
 * same input. Errors never quote the text that follows a password key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/rjson.h"
#include "tisfs/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    const char *text = (const char *)data;
    struct json_object *o = rjson_parse(text, size, err, sizeof err);
    json_object_put(o);
    (void)rjson_complete(text, size);
    struct tis_spec *s = spec_parse("fuzz", text, size, err, sizeof err);
    if (s) {
        char *a = spec_to_json(s, false), *m = spec_to_json(s, true);
        struct tis_spec *back = spec_parse("fuzz", a, strlen(a), err, sizeof err);
        if (!back)
            abort(); /* what was accepted must read back */
        char *b = spec_to_json(back, false);
        if (strcmp(a, b) != 0)
            abort();
        struct tis_spec *copy = spec_copy(s);
        spec_free(copy);
        free(a);
        free(b);
        free(m);
        spec_free(back);
        spec_free(s);
    }
    struct tis_incr_spec in;
    if (spec_parse_incr("fuzz", text, size, &in, err, sizeof err) == 0)
        spec_incr_free(&in);
    return 0;
}
