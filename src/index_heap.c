/* index_heap — the min-heap of a k-way merge's inputs by their current
 * key (index_internal.h): the build's run files (index_runs.c) and the
 * live segments with the base (key_walk, index_segs.c). */
#include "index_internal.h"

void input_heap_sift(struct input_heap *q, size_t p)
{
    size_t *h = q->h, n = q->n, x = h[p];
    for (size_t c; (c = 2 * p + 1) < n; p = c) {
        if (c + 1 < n && q->before(q->ctx, h[c + 1], h[c]))
            c++;
        if (!q->before(q->ctx, h[c], x))
            break;
        h[p] = h[c];
    }
    h[p] = x;
}

void input_heap_build(struct input_heap *q)
{
    for (size_t p = q->n / 2; p-- > 0;)
        input_heap_sift(q, p);
}

void input_heap_top_moved(struct input_heap *q, bool live)
{
    if (!live)
        q->h[0] = q->h[--q->n];
    if (q->n)
        input_heap_sift(q, 0);
}
