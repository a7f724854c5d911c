/* errand — a thread that runs one function on request (see errand.h). */
#define _GNU_SOURCE
#include "tisfs/errand.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "tisfs/util.h"

struct errand {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool asked, stop;
    void (*fn)(void *);
    void *arg;
    char name[16];
};

static void *errand_main(void *p)
{
    struct errand *e = p;
    pthread_setname_np(pthread_self(), e->name);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->asked && !e->stop)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->stop)
            break;
        e->asked = false;
        pthread_mutex_unlock(&e->mu);
        e->fn(e->arg);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

struct errand *errand_start(const char *name, void (*fn)(void *), void *arg)
{
    struct errand *e = xcalloc(1, sizeof *e);
    e->fn = fn;
    e->arg = arg;
    snprintf(e->name, sizeof e->name, "%s", name);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (pthread_create(&e->thread, NULL, errand_main, e) != 0) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
        free(e);
        return NULL;
    }
    return e;
}

void errand_ask(struct errand *e)
{
    pthread_mutex_lock(&e->mu);
    e->asked = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void errand_stop(struct errand *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}
