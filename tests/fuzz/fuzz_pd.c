/* libFuzzer target for PD's answers (src/pd.c): whatever a PD, an etcd
 * gateway or an impostor sends back parses into a topology or fails with a
 * message; never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/pd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1), err[600];
    memcpy(json, data, size);
    json[size] = 0;
    struct pd_topology t;
    memset(&t, 0, sizeof t);
    if (pd_parse_range(json, size, &t, err, sizeof err) == 0) {
        size_t n;
        t.pd = strdup("fuzz:2379");
        free(pd_live(&t, &n, err, sizeof err));
    }
    pd_topology_free(&t);
    free(json);
    return 0;
}
