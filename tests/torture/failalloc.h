/* failalloc.h: in-process control of tests/torture/failalloc.c, for programs that torture one
 * module: fail the n-th allocation from now, whatever its site, and learn whether it happened. */
#ifndef WMESH_FAILALLOC_H
#define WMESH_FAILALLOC_H

#include <stdbool.h>
#include <stdint.h>

/* Fails the n-th wrapped call made from now on (1: the next one), silently; 0 disarms, leaving
 * failalloc_fired as it was. */
void failalloc_arm(uint64_t n);
/* Whether the call armed last has failed. */
bool failalloc_fired(void);
/* With on, the armed call says so on stderr when it fails, with its stack (to find a bug). */
void failalloc_trace(bool on);

#endif
