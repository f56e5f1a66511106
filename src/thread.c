/* thread.c: threads started with every signal blocked and a name of their own. */
#include "thread.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct start {
    void *(*fn)(void *);
    void *arg;
    char name[16];
};

/* Names the thread before its work begins, so that whatever it does, and anyone reading
 * /proc meanwhile, sees the name. */
static void *trampoline(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    /* A name is for people reading /proc; failing to set it changes nothing else. */
    (void)pthread_setname_np(pthread_self(), s.name);
    return s.fn(s.arg);
}

static enum wm_err start(pthread_t *thread, bool detached, const char *name, void *(*fn)(void *),
                         void *arg)
{
    if (!thread || !name || !fn) {
        errno = EINVAL;
        return WM_ERR_INVAL;
    }
    struct start *s = malloc(sizeof *s);
    if (!s) return WM_ERR_NOMEM;
    s->fn = fn;
    s->arg = arg;
    size_t n = strnlen(name, sizeof s->name - 1);
    memcpy(s->name, name, n);
    s->name[n] = '\0';
    sigset_t all, old;
    sigfillset(&all);
    /* The new thread inherits the mask in force when it is created. */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    char copy[sizeof s->name];
    memcpy(copy, s->name, sizeof copy);
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0 && detached) rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0) rc = pthread_create(thread, &attr, trampoline, s);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(s);
        errno = rc;
        return WM_ERR_IO;
    }
    /* Named here too, so that it is named when this returns (s may be freed by now). A
     * detached thread may have ended already: its id is not used again. */
    if (!detached) (void)pthread_setname_np(*thread, copy);
    return WM_OK;
}

enum wm_err thread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg)
{
    return start(thread, false, name, fn, arg);
}

enum wm_err thread_start_detached(const char *name, void *(*fn)(void *), void *arg)
{
    pthread_t ignored;
    return start(&ignored, true, name, fn, arg);
}
