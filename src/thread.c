/* thread.c: threads started with every signal blocked and a name of their own. */
#include "thread.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

enum wm_err thread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg)
{
    if (!thread || !name || !fn) {
        errno = EINVAL;
        return WM_ERR_INVAL;
    }
    sigset_t all, old;
    sigfillset(&all);
    /* The new thread inherits the mask in force when it is created. */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return WM_ERR_IO;
    }
    char short_name[16];
    size_t n = strnlen(name, sizeof short_name - 1);
    memcpy(short_name, name, n);
    short_name[n] = '\0';
    /* A name is for people reading /proc; failing to set it changes nothing else. */
    (void)pthread_setname_np(*thread, short_name);
    return WM_OK;
}
