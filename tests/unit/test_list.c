/* test_list.c: the intrusive doubly linked lists, walked both ways after each change. */
#include <stddef.h>

#include "list.h"
#include "test.h"

struct item {
    char name;
    struct item *next, *prev;     /* one list */
    struct item *q_next, *q_prev; /* another, with a tail */
};

/* The names from head to tail, checked against the walk from tail back (when tail is given). */
static const char *walk(struct item *head, struct item *tail, int queue)
{
    static char out[16];
    size_t n = 0;
    struct item *last = NULL;
    for (struct item *i = head; i && n < sizeof out - 1; i = queue ? i->q_next : i->next) {
        if ((queue ? i->q_prev : i->prev) != last) return "bad prev link";
        out[n++] = i->name;
        last = i;
    }
    out[n] = '\0';
    if (queue && tail != last) return "bad tail";
    return out;
}

int main(void)
{
    struct item a = {.name = 'a'}, b = {.name = 'b'}, c = {.name = 'c'}, d = {.name = 'd'};
    struct item *head = NULL;
    DLIST_PUSH(head, &a, next, prev);
    DLIST_PUSH(head, &b, next, prev);
    DLIST_PUSH(head, &c, next, prev);
    ASSERT_EQ_STR(walk(head, NULL, 0), "cba");
    struct item *e = &b;
    DLIST_REMOVE(head, e, next, prev); /* the middle */
    ASSERT_EQ_STR(walk(head, NULL, 0), "ca");
    ASSERT_TRUE(b.next == NULL && b.prev == NULL);
    e = &c;
    DLIST_REMOVE(head, e, next, prev); /* the head */
    ASSERT_EQ_STR(walk(head, NULL, 0), "a");
    e = &a;
    DLIST_REMOVE(head, e, next, prev); /* the last one */
    ASSERT_TRUE(head == NULL);

    /* Insertion after an element, without a tail: an empty list, the head, the end, the middle. */
    struct item *after = NULL;
    DLIST_INSERT_AFTER(head, after, &a, next, prev);
    ASSERT_EQ_STR(walk(head, NULL, 0), "a");
    DLIST_INSERT_AFTER(head, after, &b, next, prev);
    ASSERT_EQ_STR(walk(head, NULL, 0), "ba");
    after = &a;
    DLIST_INSERT_AFTER(head, after, &c, next, prev);
    ASSERT_EQ_STR(walk(head, NULL, 0), "bac");
    after = &b;
    DLIST_INSERT_AFTER(head, after, &d, next, prev);
    ASSERT_EQ_STR(walk(head, NULL, 0), "bdac");
    for (struct item *i = head; (e = i);) {
        i = i->next;
        DLIST_REMOVE(head, e, next, prev);
    }
    ASSERT_TRUE(head == NULL && d.next == NULL && d.prev == NULL);

    struct item *qh = NULL, *qt = NULL;
    DLIST_APPEND(qh, qt, &a, q_next, q_prev);
    DLIST_APPEND(qh, qt, &b, q_next, q_prev);
    ASSERT_EQ_STR(walk(qh, qt, 1), "ab");
    struct item *none = NULL;
    DLIST_INSERT_AFTER_TAILED(qh, qt, none, &c, q_next, q_prev); /* at the head */
    ASSERT_EQ_STR(walk(qh, qt, 1), "cab");
    e = &b;
    DLIST_INSERT_AFTER_TAILED(qh, qt, e, &d, q_next, q_prev); /* after the tail */
    ASSERT_EQ_STR(walk(qh, qt, 1), "cabd");
    e = &d;
    DLIST_REMOVE_TAILED(qh, qt, e, q_next, q_prev);
    e = &a;
    DLIST_INSERT_AFTER_TAILED(qh, qt, e, &d, q_next, q_prev); /* in the middle */
    ASSERT_EQ_STR(walk(qh, qt, 1), "cadb");
    e = &b;
    DLIST_REMOVE_TAILED(qh, qt, e, q_next, q_prev); /* the tail */
    ASSERT_EQ_STR(walk(qh, qt, 1), "cad");
    e = &c;
    DLIST_REMOVE_TAILED(qh, qt, e, q_next, q_prev); /* the head */
    ASSERT_EQ_STR(walk(qh, qt, 1), "ad");
    /* The two lists are independent: a is on the queue, on no plain list. */
    ASSERT_TRUE(a.next == NULL && a.prev == NULL);
    e = &a;
    DLIST_REMOVE_TAILED(qh, qt, e, q_next, q_prev);
    e = &d;
    DLIST_REMOVE_TAILED(qh, qt, e, q_next, q_prev);
    ASSERT_TRUE(qh == NULL && qt == NULL);
    return TEST_REPORT();
}
