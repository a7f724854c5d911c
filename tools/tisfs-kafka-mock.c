/* tisfs-kafka-mock — a Kafka cluster for the tests, out of librdkafka's mock
 * cluster: it speaks the real protocol, so the daemon, kcat and
 * confluent_kafka talk to it exactly as to a broker, and it needs no JVM.
 *
 *   tisfs-kafka-mock [--brokers N] [--topic NAME:PARTITIONS ...]
 *
 * Prints one line "BOOTSTRAP host:port[,host:port...]", then answers each
 * command line on stdin with "OK" or "ERR reason":
 *   topic NAME PARTITIONS   create a topic (replication factor 1)
 *   down [BROKER]           refuse connections (all brokers unless one id)
 *   up [BROKER]             accept them again
 *   quit
 * EOF on stdin, SIGTERM, SIGINT or SIGHUP end it cleanly.
 *
 * Facts of the mock (librdkafka 2.0) that tests must allow for: any client
 * asking for a topic's metadata creates it (4 partitions; the mock speaks
 * Metadata v2, before AllowAutoTopicCreation existed); a group's first join
 * waits 3 s; "down" moves no partition leader, it only refuses connections;
 * metadata lists min(3, brokers) replicas whatever replication we ask for.
 *
 * The mock binds its listeners to INADDR_LOOPBACK on kernel-chosen ports,
 * so nothing here is reachable from beyond this machine. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static void usage(void)
{
    fprintf(stderr, "usage: tisfs-kafka-mock [--brokers N] [--topic NAME:PARTITIONS ...]\n");
    exit(2);
}

/* Whole-string decimal in [lo, hi], or -1. */
static long parse_num(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    /* The driver waits for each answer before its next command. */
    fflush(stdout);
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, const char *parts)
{
    long n = parse_num(parts, 1, 100000);
    if (!*name || n < 0) {
        reply("ERR bad topic %s %s", name, parts);
        return -1;
    }
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, (int)n, 1);
    if (err) {
        reply("ERR %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Runs one command line; returns 1 to quit. */
static int command(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
    char *argv[4];
    int argc = 0;
    for (char *save, *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
        if (argc == 4) {
            reply("ERR too many arguments");
            return 0;
        }
        argv[argc++] = t;
    }
    if (argc == 0) {
        reply("ERR empty command");
    } else if (!strcmp(argv[0], "topic") && argc == 3) {
        if (create_topic(mc, argv[1], argv[2]) == 0)
            reply("OK");
    } else if ((!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) && argc <= 2) {
        long id = argc == 2 ? parse_num(argv[1], 1, brokers) : -1;
        if (argc == 2 && id < 0) {
            reply("ERR no broker %s (ids are 1..%d)", argv[1], brokers);
            return 0;
        }
        rd_kafka_resp_err_t err = argv[0][0] == 'd'
                                      ? rd_kafka_mock_broker_set_down(mc, (int32_t)id)
                                      : rd_kafka_mock_broker_set_up(mc, (int32_t)id);
        if (err)
            reply("ERR %s", rd_kafka_err2str(err));
        else
            reply("OK");
    } else if (!strcmp(argv[0], "quit") && argc == 1) {
        reply("OK");
        return 1;
    } else {
        reply("ERR unknown command %s", argv[0]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
            long n = parse_num(argv[++i], 1, 64);
            if (n < 0)
                usage();
            brokers = (int)n;
        } else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
            i++;   /* checked once the cluster exists */
        } else {
            usage();
        }
    }

    /* Blocked before any thread exists, so every librdkafka and mock thread
     * inherits the mask and the signals reach only our signalfd: a handler
     * could run on a mock thread and a blocking read would never see it. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0) {
        perror("tisfs-kafka-mock: sigprocmask");
        return 1;
    }
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("tisfs-kafka-mock: signalfd");
        return 1;
    }
    /* A driver that went away must end us through EOF or EPIPE, not kill us
     * mid-reply. */
    signal(SIGPIPE, SIG_IGN);

    /* The handle only hosts the mock (its threads and bookkeeping); with no
     * bootstrap.servers it connects nowhere itself. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* log_level 4 hides the notice that this handle has no bootstrap.servers,
     * which is the point; the mock's own errors are logged above it. */
    if (rd_kafka_conf_set(conf, "client.id", "tisfs-kafka-mock", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr)) {
        fprintf(stderr, "tisfs-kafka-mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "tisfs-kafka-mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "tisfs-kafka-mock: could not create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--topic") != 0)
            continue;
        char *spec = argv[++i], *colon = strrchr(spec, ':');
        if (!colon) {
            fprintf(stderr, "tisfs-kafka-mock: --topic %s: want NAME:PARTITIONS\n", spec);
            rc = 2;
            goto out;
        }
        *colon = '\0';
        long n = parse_num(colon + 1, 1, 100000);
        rd_kafka_resp_err_t err =
            n < 0 || !*spec ? RD_KAFKA_RESP_ERR__INVALID_ARG
                            : rd_kafka_mock_topic_create(mc, spec, (int)n, 1);
        if (err) {
            fprintf(stderr, "tisfs-kafka-mock: --topic %s:%s: %s\n", spec, colon + 1,
                    rd_kafka_err2str(err));
            rc = 2;
            goto out;
        }
    }

    printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    /* stdin is read raw beside the signalfd: stdio buffering would hide
     * complete lines from poll(). */
    char buf[4096];
    size_t len = 0;
    int overlong = 0;   /* inside a line too long for buf: drop up to its end */
    for (;;) {
        struct pollfd pfd[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("tisfs-kafka-mock: poll");
            rc = 1;
            break;
        }
        if (pfd[1].revents)
            break;
        if (!pfd[0].revents)
            continue;
        ssize_t n = read(0, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        char *start = buf, *nl;
        int quit = 0;
        while (!quit && (nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
            *nl = '\0';
            if (overlong)
                overlong = 0;
            else
                quit = command(mc, brokers, start);
            start = nl + 1;
        }
        if (quit)
            break;
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
        if (len == sizeof buf - 1) {
            if (!overlong)
                reply("ERR line too long");
            overlong = 1;
            len = 0;
        }
    }

out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    close(sfd);
    return rc;
}
