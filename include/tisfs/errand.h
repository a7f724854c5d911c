/* errand — a thread that runs one function whenever it is asked to, off
 * the asker's path: the channel's fdatasync (incr.c) and its wake of
 * librdkafka's fetcher (incr_kafka.c) are both round trips that the
 * channel must not wait out. Asks made while the function runs come to
 * one more run; an ask still pending when the errand stops is dropped. */
#ifndef TISFS_ERRAND_H
#define TISFS_ERRAND_H

struct errand;

/* Starts a thread named name (at most 15 characters) that runs fn(arg)
 * at each ask; NULL when no thread can be made (then the caller runs fn
 * itself). */
struct errand *errand_start(const char *name, void (*fn)(void *), void *arg);
/* Asks for a run; returns at once. */
void errand_ask(struct errand *e);
/* Waits for a run in progress to end, then ends the thread. NULL: none. */
void errand_stop(struct errand *e);

#endif
