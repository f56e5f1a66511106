/* bytes.h: byte strings written out in the tests of binary wire formats (MQTT, WebSocket). */
#ifndef WMESH_TEST_BYTES_H
#define WMESH_TEST_BYTES_H

#include <stddef.h>
#include <stdio.h>

struct bytes {
    const unsigned char *p;
    size_t n;
};

/* A byte string written out in hex: B(0x20, 0x02, 0x00, 0x00). */
#define B(...)                                                                                     \
    ((struct bytes){(const unsigned char[]){__VA_ARGS__},                                          \
                    sizeof((const unsigned char[]){__VA_ARGS__})})

/* Prints label and the first 96 bytes in hex on stderr, for a failed comparison. */
static inline void hexdump(const char *label, const unsigned char *p, size_t n)
{
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 96; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, n > 96 ? " ...\n" : "\n");
}

#endif
