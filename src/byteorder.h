/* byteorder.h: fixed-width little-endian integers in byte arrays, for the on-disk formats. */
#ifndef WMESH_BYTEORDER_H
#define WMESH_BYTEORDER_H

#include <stdint.h>

/* Each reads or writes 2, 4 or 8 bytes at p, least significant first; p need not be aligned. */

static inline uint16_t le16_read(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32_read(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64_read(const unsigned char *p)
{
    return (uint64_t)le32_read(p) | (uint64_t)le32_read(p + 4) << 32;
}

static inline void le16_write(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void le32_write(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void le64_write(unsigned char *p, uint64_t v)
{
    le32_write(p, (uint32_t)v);
    le32_write(p + 4, (uint32_t)(v >> 32));
}

#endif
