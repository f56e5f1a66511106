/* list.h: doubly linked lists whose elements carry their own links (intrusive lists). */
#ifndef WMESH_LIST_H
#define WMESH_LIST_H

/* An element links to its neighbours through two pointer members the caller names (nx, pv), so
 * that one struct can sit on several lists: fetch.c's connections are on their fetcher's list
 * and on their host's idle list. head (and tail, for lists that keep one) are lvalues of the
 * element's pointer type, NULL when the list is empty; the first element's pv and the last one's
 * nx are NULL. The list owns nothing. Arguments may be evaluated more than once: e and after
 * must be plain variables, not head or tail themselves. */

/* Puts e first. */
#define DLIST_PUSH(head, e, nx, pv)                                                                \
    do {                                                                                           \
        (e)->pv = NULL;                                                                            \
        (e)->nx = (head);                                                                          \
        if (head) (head)->pv = (e);                                                                \
        (head) = (e);                                                                              \
    } while (0)

/* Puts e right after `after`, an element of the list, or first when after is NULL. */
#define DLIST_INSERT_AFTER(head, after, e, nx, pv)                                                 \
    do {                                                                                           \
        (e)->pv = (after);                                                                         \
        (e)->nx = (after) ? (after)->nx : (head);                                                  \
        if ((e)->nx) (e)->nx->pv = (e);                                                            \
        if (after)                                                                                 \
            (after)->nx = (e);                                                                     \
        else                                                                                       \
            (head) = (e);                                                                          \
    } while (0)

/* Takes e out of the list and clears its links. */
#define DLIST_REMOVE(head, e, nx, pv)                                                              \
    do {                                                                                           \
        if ((e)->pv)                                                                               \
            (e)->pv->nx = (e)->nx;                                                                 \
        else                                                                                       \
            (head) = (e)->nx;                                                                      \
        if ((e)->nx) (e)->nx->pv = (e)->pv;                                                        \
        (e)->nx = (e)->pv = NULL;                                                                  \
    } while (0)

/* ---- lists that also keep their last element in tail ---- */

/* Puts e right after `after`, an element of the list, or first when after is NULL. */
#define DLIST_INSERT_AFTER_TAILED(head, tail, after, e, nx, pv)                                    \
    do {                                                                                           \
        (e)->pv = (after);                                                                         \
        (e)->nx = (after) ? (after)->nx : (head);                                                  \
        if ((e)->nx)                                                                               \
            (e)->nx->pv = (e);                                                                     \
        else                                                                                       \
            (tail) = (e);                                                                          \
        if (after)                                                                                 \
            (after)->nx = (e);                                                                     \
        else                                                                                       \
            (head) = (e);                                                                          \
    } while (0)

/* Puts e last. */
#define DLIST_APPEND(head, tail, e, nx, pv)                                                        \
    do {                                                                                           \
        (e)->nx = NULL;                                                                            \
        (e)->pv = (tail);                                                                          \
        if (tail)                                                                                  \
            (tail)->nx = (e);                                                                      \
        else                                                                                       \
            (head) = (e);                                                                          \
        (tail) = (e);                                                                              \
    } while (0)

/* Takes e out of the list and clears its links. */
#define DLIST_REMOVE_TAILED(head, tail, e, nx, pv)                                                 \
    do {                                                                                           \
        if ((e)->pv)                                                                               \
            (e)->pv->nx = (e)->nx;                                                                 \
        else                                                                                       \
            (head) = (e)->nx;                                                                      \
        if ((e)->nx)                                                                               \
            (e)->nx->pv = (e)->pv;                                                                 \
        else                                                                                       \
            (tail) = (e)->pv;                                                                      \
        (e)->nx = (e)->pv = NULL;                                                                  \
    } while (0)

#endif
