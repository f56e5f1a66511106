/* test_hash.c: FNV-1a against its published test vectors; the finaliser's known properties. */
#include "hash.h"
#include "test.h"

int main(void)
{
    /* Vectors from the FNV reference (draft-eastlake-fnv, 64-bit FNV-1a). */
    ASSERT_TRUE(hash_fnv1a(HASH_FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL);
    ASSERT_TRUE(hash_fnv1a(HASH_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    ASSERT_TRUE(hash_fnv1a(HASH_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    /* Byte by byte is the same hash as all at once. */
    uint64_t h = HASH_FNV1A_INIT;
    for (const char *s = "foobar"; *s; s++)
        h = hash_fnv1a_byte(h, (unsigned char)*s);
    ASSERT_TRUE(h == 0x85944171f73967e8ULL);
    /* A seed changes the hash. */
    ASSERT_TRUE(hash_fnv1a(HASH_FNV1A_INIT ^ 1, "a", 1) != 0xaf63dc4c8601ec8cULL);

    /* The finaliser: 0 stays 0; neighbours land far apart (about half the bits differ). */
    ASSERT_TRUE(hash_mix64(0) == 0);
    ASSERT_TRUE(hash_mix64(1) == 0xb456bcfc34c2cb2cULL);
    for (uint64_t k = 1; k < 64; k++) {
        int differ = __builtin_popcountll(hash_mix64(k) ^ hash_mix64(k + 1));
        ASSERT_TRUE(differ > 12 && differ < 52);
    }
    return TEST_REPORT();
}
