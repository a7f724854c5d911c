/* Unit tests for src/errand.c: a run per ask, asks made during a run come
 * to one more run, and a stop waits for the run in progress. Waits poll
 * with a deadline; nothing sleeps for a fixed time to synchronise. */
#define _GNU_SOURCE
#include "tisfs/errand.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "check.h"

struct job {
    atomic_int started, finished;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open; /* the gate a run waits at */
};

static void run(void *arg)
{
    struct job *j = arg;
    atomic_fetch_add(&j->started, 1);
    pthread_mutex_lock(&j->mu);
    while (!j->open)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_add(&j->finished, 1);
}

static void gate(struct job *j, bool open)
{
    pthread_mutex_lock(&j->mu);
    j->open = open;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Whether *n reaches want within 10 s. */
static bool reaches(atomic_int *n, int want)
{
    struct timespec t0, now, nap = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (atomic_load(n) >= want)
            return true;
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - t0.tv_sec < 10);
    return false;
}

static void test_asks_run_and_coalesce(void)
{
    struct job j = {.open = true};
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    struct errand *e = errand_start("test-errand", run, &j);
    CHECK(e != NULL);
    errand_ask(e);
    CHECK(reaches(&j.finished, 1));
    gate(&j, false);
    errand_ask(e);
    CHECK(reaches(&j.started, 2)); /* running, held at the gate */
    for (int i = 0; i < 3; i++)    /* asks during a run: one more run */
        errand_ask(e);
    gate(&j, true);
    CHECK(reaches(&j.finished, 3));
    errand_stop(e);
    CHECK_INT(atomic_load(&j.started), 3);
    CHECK_INT(atomic_load(&j.finished), 3);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);
}

struct stopper {
    struct errand *e;
    atomic_bool done;
};

static void *stop_it(void *arg)
{
    struct stopper *s = arg;
    errand_stop(s->e);
    atomic_store(&s->done, true);
    return NULL;
}

/* A stop during a run returns once the run has ended, not before. */
static void test_stop_waits_for_the_run(void)
{
    struct job j = {.open = false};
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    struct stopper s = {errand_start("test-errand", run, &j), false};
    errand_ask(s.e);
    CHECK(reaches(&j.started, 1));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, stop_it, &s) == 0);
    CHECK(!atomic_load(&s.done)); /* (the run is held: the stop cannot have returned) */
    gate(&j, true);
    pthread_join(t, NULL);
    CHECK(atomic_load(&s.done));
    CHECK_INT(atomic_load(&j.finished), 1);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);
}

int main(void)
{
    test_asks_run_and_coalesce();
    test_stop_waits_for_the_run();
    errand_stop(NULL);
    return check_summary();
}
