/* hash.h: the non-cryptographic hashes of the in-memory tables (not for anything an attacker
 * could exploit without a secret seed: strmap's keys come from us, seen and gb seed theirs). */
#ifndef WMESH_HASH_H
#define WMESH_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, 64 bits: start from HASH_FNV1A_INIT (or it xored with a seed), add bytes one by one.
 * Short keys, cheap, good enough where the table's mixing or chaining absorbs its weakness. */
#define HASH_FNV1A_INIT 0xcbf29ce484222325ULL

static inline uint64_t hash_fnv1a_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL;
}

static inline uint64_t hash_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = hash_fnv1a_byte(h, p[i]);
    return h;
}

/* MurmurHash3's 64-bit finaliser: every input bit flips each output bit with probability about
 * one half, so the low bits alone can index an open-addressing table. A bijection. */
static inline uint64_t hash_mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

#endif
