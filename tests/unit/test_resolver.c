/* test_resolver.c: names resolved off the loop. IP literals and cached names are answered at
 * once, others from a thread through the loop; a query can be cancelled; and, where this
 * process may make a mount namespace of its own, a name server that never answers holds up
 * neither the loop nor other names, nor the resolver's end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/loop.h"
#include "../../src/resolver.h"
#include "test.h"

struct got {
    int calls;
    struct resolver_answer answer;
    struct loop *loop;
    int64_t at_ms;
};

static void on_answer(void *arg, const struct resolver_answer *a)
{
    struct got *g = arg;
    g->calls++;
    g->answer = *a;
    g->at_ms = loop_now_ms(g->loop);
    loop_stop(g->loop);
}

static void on_guard(void *arg)
{
    loop_stop(arg);
}

/* Runs the loop until a callback stops it or ms pass. */
static void run_for(struct loop *loop, int64_t ms)
{
    struct loop_timer guard = {0};
    loop_timer_start(loop, &guard, ms, on_guard, loop);
    ASSERT_EQ_INT(loop_run(loop), WM_OK);
    loop_timer_stop(loop, &guard);
}

static int port_of(const struct resolver_answer *a, int i)
{
    const struct sockaddr *s = (const struct sockaddr *)&a->addr[i];
    if (s->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)s)->sin6_port);
    return ntohs(((const struct sockaddr_in *)(const void *)s)->sin_port);
}

static void test_literals(struct resolver *r)
{
    struct resolver_query q = {0};
    struct resolver_answer a;
    char text[64];
    ASSERT_TRUE(resolver_resolve(r, &q, "127.0.0.1", 8080, on_answer, NULL, &a));
    ASSERT_EQ_INT(a.n, 1);
    resolver_describe((const struct sockaddr *)&a.addr[0], text, sizeof text);
    ASSERT_EQ_STR(text, "127.0.0.1:8080");
    ASSERT_TRUE(resolver_resolve(r, &q, "::1", 443, on_answer, NULL, &a));
    ASSERT_EQ_INT(a.n, 1);
    resolver_describe((const struct sockaddr *)&a.addr[0], text, sizeof text);
    ASSERT_EQ_STR(text, "[::1]:443");
    ASSERT_EQ_INT(resolver_running(r), 0);
}

/* A name goes through a thread, then comes from the cache, with each query's port. */
static void test_name_then_cache(struct loop *loop, struct resolver *r)
{
    struct got g = {.loop = loop};
    struct resolver_query q = {0};
    struct resolver_answer a;
    ASSERT_TRUE(!resolver_resolve(r, &q, "localhost", 1883, on_answer, &g, &a));
    ASSERT_EQ_INT(resolver_running(r), 1);
    run_for(loop, 10000);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_TRUE(g.answer.n >= 1);
    if (g.answer.n >= 1) ASSERT_EQ_INT(port_of(&g.answer, 0), 1883);
    ASSERT_EQ_INT(resolver_running(r), 0);
    ASSERT_TRUE(resolver_resolve(r, &q, "LOCALHOST", 80, on_answer, &g, &a)); /* cached */
    ASSERT_EQ_INT(a.n, g.answer.n);
    if (a.n >= 1) ASSERT_EQ_INT(port_of(&a, 0), 80);
}

/* Two queries share a lookup; the cancelled one hears nothing. An unknown name is an answer
 * without addresses that says why. */
static void test_cancel_and_failure(struct loop *loop, struct resolver *r)
{
    struct got g1 = {.loop = loop}, g2 = {.loop = loop};
    struct resolver_query q1 = {0}, q2 = {0};
    struct resolver_answer a;
    ASSERT_TRUE(!resolver_resolve(r, &q1, "no-such-host.invalid", 80, on_answer, &g1, &a));
    ASSERT_TRUE(!resolver_resolve(r, &q2, "no-such-host.invalid", 80, on_answer, &g2, &a));
    ASSERT_EQ_INT(resolver_running(r), 1);
    resolver_cancel(r, &q1);
    resolver_cancel(r, &q1); /* twice is fine */
    run_for(loop, 10000);
    ASSERT_EQ_INT(g1.calls, 0);
    ASSERT_EQ_INT(g2.calls, 1);
    ASSERT_EQ_INT(g2.answer.n, 0);
    ASSERT_TRUE(strncmp(g2.answer.why, "cannot resolve no-such-host.invalid", 35) == 0);
    /* The failure is remembered for a while: answered at once. */
    ASSERT_TRUE(resolver_resolve(r, &q1, "no-such-host.invalid", 80, on_answer, &g1, &a));
    ASSERT_EQ_INT(a.n, 0);
}

/* ---- a name server that never answers ---- */

static int sink_fd = -1;

/* This process alone sees a resolv.conf naming a UDP port that takes queries and never
 * answers. False when it cannot (not root, no namespaces). */
static bool use_silent_name_server(const char *dir)
{
    if (unshare(CLONE_NEWNS) != 0) return false;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, "127.0.0.77", &sa.sin_addr);
    sink_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sink_fd < 0 || bind(sink_fd, (struct sockaddr *)&sa, sizeof sa) != 0) return false;
    char path[256];
    snprintf(path, sizeof path, "%s/resolv.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "nameserver 127.0.0.77\noptions timeout:3 attempts:1\n");
    fclose(f);
    return mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0;
}

/* While lookups of more names than there are threads hang, the loop runs its timers on time,
 * an IP literal and a cached name are answered at once, and freeing the resolver does not wait.
 */
static void test_silent_name_server(struct loop *loop)
{
    char dir[] = "/tmp/wm-resolver-XXXXXX";
    if (!mkdtemp(dir) || !use_silent_name_server(dir)) {
        fprintf(stderr, "no private mount namespace (%s): silent name server not tested\n",
                strerror(errno));
        return;
    }
    struct resolver *r = resolver_new(loop);
    ASSERT_TRUE(r != NULL);
    if (!r) return;
    struct got g[RESOLVER_THREADS + 2];
    struct resolver_query q[RESOLVER_THREADS + 2];
    memset(q, 0, sizeof q);
    struct resolver_answer a;
    for (int i = 0; i < RESOLVER_THREADS + 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "silent-%d.example", i);
        g[i] = (struct got){.loop = loop};
        ASSERT_TRUE(!resolver_resolve(r, &q[i], name, 80, on_answer, &g[i], &a));
    }
    ASSERT_EQ_INT(resolver_running(r), RESOLVER_THREADS + 2);
    int64_t t0 = loop_now_ms(loop);
    run_for(loop, 1000); /* nothing answers: the guard ends it */
    int64_t took = loop_now_ms(loop) - t0;
    ASSERT_TRUE(took >= 900 && took < 2500);
    for (int i = 0; i < RESOLVER_THREADS + 2; i++)
        ASSERT_EQ_INT(g[i].calls, 0);
    ASSERT_TRUE(resolver_resolve(r, &q[0], "10.1.2.3", 80, on_answer, &g[0], &a));
    int64_t f0 = loop_mono_ns();
    resolver_free(&r);
    ASSERT_TRUE(loop_mono_ns() - f0 < 500 * 1000000LL); /* did not wait for getaddrinfo */
    /* The threads end on their own once their lookups time out. */
    sleep(4);
    close(sink_fd);
    char path[300];
    umount("/etc/resolv.conf");
    snprintf(path, sizeof path, "%s/resolv.conf", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    struct loop *loop = loop_new();
    ASSERT_TRUE(loop != NULL);
    if (!loop) return TEST_REPORT();
    struct resolver *r = resolver_new(loop);
    ASSERT_TRUE(r != NULL);
    if (r) {
        test_literals(r);
        test_name_then_cache(loop, r);
        test_cancel_and_failure(loop, r);
        resolver_free(&r);
        ASSERT_TRUE(r == NULL);
    }
    resolver_free(&r); /* NULL is fine */
    test_silent_name_server(loop);
    loop_free(&loop);
    return TEST_REPORT();
}
