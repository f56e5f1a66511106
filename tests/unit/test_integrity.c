/* test_integrity.c: checksum methods, digests against known vectors, checksum values as text. */
#include <stdlib.h>
#include <unistd.h>

#include "integrity.h"
#include "text.h"
#include "test.h"

#define MD5_EMPTY_HEX "d41d8cd98f00b204e9800998ecf8427e"
#define MD5_EMPTY_B64 "1B2M2Y8AsgTpgAmY7PhCfg=="
#define SHA512_ABC_HEX                                                                             \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                             \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define SHA256_ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA384_ABC_HEX                                                                             \
    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"                                             \
    "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
#define SHA3_256_ABC_HEX "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"

/* Hex of a checksum's value, for readable comparisons. */
static const char *hex_of(const struct wm_checksum *sum)
{
    static char text[2 * WM_SUM_MAX_LEN + 1];
    if (text_hex_encode(sum->value, sum->len, text, sizeof text) != WM_OK) return "(error)";
    return text;
}

static void fill_pattern(unsigned char *buf, size_t len)
{
    uint32_t x = 2463534242u; /* xorshift: reproducible, not constant */
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void test_method_names(void)
{
    ASSERT_EQ_STR(integrity_method_name(WM_SUM_SHA3_256), "sha3-256");
    ASSERT_EQ_STR(integrity_method_name(WM_SUM_MD5NAME), "md5name");
    ASSERT_EQ_INT(integrity_method_from_name("SHA512"), WM_SUM_SHA512);
    ASSERT_EQ_INT(integrity_method_from_name("sha3-512"), WM_SUM_SHA3_512);
    ASSERT_EQ_INT(integrity_method_from_name("cod"), WM_SUM_COD);
    ASSERT_EQ_INT(integrity_method_from_name("crc32"), WM_SUM_NONE);
    ASSERT_EQ_INT(integrity_method_from_name(NULL), WM_SUM_NONE);
    ASSERT_EQ_INT(integrity_method_letter(WM_SUM_MD5), 'd');
    ASSERT_EQ_INT(integrity_method_letter(WM_SUM_SHA512), 's');
    ASSERT_EQ_INT(integrity_method_letter(WM_SUM_SHA256), 0);
    ASSERT_EQ_INT(integrity_method_from_letter('n'), WM_SUM_MD5NAME);
    ASSERT_EQ_INT(integrity_method_from_letter('z'), WM_SUM_COD);
    ASSERT_EQ_INT(integrity_method_from_letter('0'), WM_SUM_RANDOM);
    ASSERT_EQ_INT(integrity_method_from_letter('a'), WM_SUM_ARBITRARY);
    ASSERT_EQ_INT(integrity_method_from_letter('L'), WM_SUM_NONE);
    ASSERT_EQ_INT(integrity_digest_len(WM_SUM_SHA384), 48);
    ASSERT_EQ_INT(integrity_digest_len(WM_SUM_MD5NAME), 16);
    ASSERT_EQ_INT(integrity_digest_len(WM_SUM_RANDOM), 0);
    ASSERT_TRUE(integrity_is_digest(WM_SUM_SHA3_384));
    ASSERT_TRUE(!integrity_is_digest(WM_SUM_MD5NAME));
    ASSERT_TRUE(!integrity_is_digest(WM_SUM_COD));
}

static void test_vectors(void)
{
    struct wm_checksum s;
    char b64[128];
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5, NULL, "", 0, &s), WM_OK);
    ASSERT_EQ_INT(s.method, WM_SUM_MD5);
    ASSERT_EQ_STR(hex_of(&s), MD5_EMPTY_HEX);
    ASSERT_EQ_INT(text_base64_encode(s.value, s.len, b64, sizeof b64), WM_OK);
    ASSERT_EQ_STR(b64, MD5_EMPTY_B64);
    ASSERT_EQ_INT(integrity_value_format(&s, b64, sizeof b64), WM_OK);
    ASSERT_EQ_STR(b64, MD5_EMPTY_B64);

    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, NULL, "abc", 3, &s), WM_OK);
    ASSERT_EQ_INT(s.len, 64);
    ASSERT_EQ_STR(hex_of(&s), SHA512_ABC_HEX);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA256, NULL, "abc", 3, &s), WM_OK);
    ASSERT_EQ_STR(hex_of(&s), SHA256_ABC_HEX);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA384, NULL, "abc", 3, &s), WM_OK);
    ASSERT_EQ_STR(hex_of(&s), SHA384_ABC_HEX);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA3_256, NULL, "abc", 3, &s), WM_OK);
    ASSERT_EQ_STR(hex_of(&s), SHA3_256_ABC_HEX);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA3_512, NULL, "abc", 3, &s), WM_OK);
    ASSERT_EQ_INT(s.len, 64);
}

static void test_md5name(void)
{
    struct wm_checksum byname, direct;
    const char *base = "UANT01_CWAO_200445___15103";
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5NAME, "/x/y/UANT01_CWAO_200445___15103",
                                      "content is ignored", 18, &byname),
                  WM_OK);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5, NULL, base, strlen(base), &direct), WM_OK);
    ASSERT_EQ_INT(byname.method, WM_SUM_MD5NAME);
    ASSERT_EQ_INT(byname.len, 16);
    ASSERT_EQ_MEM(byname.value, direct.value, 16);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5NAME, NULL, "", 0, &byname), WM_ERR_METHOD);
}

static void test_value_parse(void)
{
    struct wm_checksum a, b, c;
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_MD5, MD5_EMPTY_B64, &a), WM_OK);
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_MD5, MD5_EMPTY_HEX, &b), WM_OK);
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_MD5, "D41D8CD98F00B204E9800998ECF8427E", &c), WM_OK);
    ASSERT_TRUE(integrity_equal(&a, &b));
    ASSERT_TRUE(integrity_equal(&a, &c));
    ASSERT_EQ_STR(hex_of(&a), MD5_EMPTY_HEX);

    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_SHA512, SHA512_ABC_HEX, &a), WM_OK);
    char b64[128];
    ASSERT_EQ_INT(integrity_value_format(&a, b64, sizeof b64), WM_OK);
    ASSERT_EQ_INT(strlen(b64), 88);
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_SHA512, b64, &b), WM_OK);
    ASSERT_TRUE(integrity_equal(&a, &b));
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_SHA256, SHA256_ABC_HEX, &a), WM_OK);
    ASSERT_EQ_INT(a.len, 32);

    const char *why = NULL;
    ASSERT_EQ_INT(integrity_value_parse_why(WM_SUM_MD5, "1B2M2Y8AsgTpgAmY7PhC", &a, &why),
                  WM_ERR_INVAL); /* 15 bytes */
    ASSERT_TRUE(why && strstr(why, "length"));
    ASSERT_EQ_INT(integrity_value_parse_why(WM_SUM_SHA512, MD5_EMPTY_B64, &a, &why), WM_ERR_INVAL);
    ASSERT_EQ_INT(integrity_value_parse_why(WM_SUM_MD5, "not base64!", &a, &why), WM_ERR_INVAL);
    ASSERT_TRUE(why && strstr(why, "base64"));
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_NONE, MD5_EMPTY_B64, &a), WM_ERR_METHOD);

    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_COD, "sha512", &a), WM_OK);
    ASSERT_EQ_INT(a.cod_method, WM_SUM_SHA512);
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_COD, "d", &a), WM_OK);
    ASSERT_EQ_INT(a.cod_method, WM_SUM_MD5);
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_COD, "random", &a), WM_ERR_METHOD);
    ASSERT_EQ_INT(integrity_value_format(
                      &(struct wm_checksum){.method = WM_SUM_COD, .cod_method = WM_SUM_SHA3_256},
                      b64, sizeof b64),
                  WM_OK);
    ASSERT_EQ_STR(b64, "sha3-256");

    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_ARBITRARY, "my tag", &a), WM_OK);
    ASSERT_EQ_INT(integrity_value_format(&a, b64, sizeof b64), WM_OK);
    ASSERT_EQ_STR(b64, "my tag");
    char longtext[80];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_RANDOM, longtext, &a), WM_ERR_TOOBIG);
}

static void test_streaming(void)
{
    size_t len = 200001;
    unsigned char *data = malloc(len);
    if (!data) return;
    fill_pattern(data, len);
    static const size_t chunks[] = {1, 7, 4093, 65537, 200001};
    static const enum wm_sum ms[] = {WM_SUM_MD5, WM_SUM_SHA512, WM_SUM_SHA3_384};
    for (size_t m = 0; m < sizeof ms / sizeof ms[0]; m++) {
        struct wm_checksum whole;
        ASSERT_EQ_INT(integrity_of_buffer(ms[m], NULL, data, len, &whole), WM_OK);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            struct wm_checksum like = {.method = ms[m]}, got;
            struct integrity_ctx *ctx = integrity_begin(&like, NULL);
            ASSERT_TRUE(ctx != NULL);
            for (size_t off = 0; off < len; off += chunks[c])
                integrity_update(ctx, data + off, len - off < chunks[c] ? len - off : chunks[c]);
            ASSERT_EQ_INT(integrity_finish(&ctx, &got), WM_OK);
            ASSERT_TRUE(ctx == NULL);
            ASSERT_TRUE(integrity_equal(&whole, &got));
        }
    }
    free(data);
}

static void test_fd(void)
{
    char path[] = "/tmp/test_integrity_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return;
    unlink(path);
    size_t len = 3 * 65536 + 17;
    unsigned char *data = malloc(len);
    if (!data) return;
    fill_pattern(data, len);
    ASSERT_EQ_INT(write(fd, data, len), len);
    /* The file offset is at the end: integrity_of_fd must still read from offset 0. */
    struct wm_checksum from_fd, from_buf;
    ASSERT_EQ_INT(integrity_of_fd(WM_SUM_SHA512, NULL, fd, &from_fd), WM_OK);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, NULL, data, len, &from_buf), WM_OK);
    ASSERT_TRUE(integrity_equal(&from_fd, &from_buf));
    ASSERT_EQ_INT(integrity_of_fd(WM_SUM_MD5NAME, "dir/name.txt", fd, &from_fd), WM_OK);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5, NULL, "name.txt", 8, &from_buf), WM_OK);
    ASSERT_EQ_MEM(from_fd.value, from_buf.value, 16);
    ASSERT_EQ_INT(integrity_of_fd(WM_SUM_MD5, NULL, -1, &from_fd), WM_ERR_INVAL);
    close(fd);
    ASSERT_EQ_INT(integrity_of_fd(WM_SUM_MD5, NULL, fd, &from_fd), WM_ERR_IO);
    free(data);
}

static void test_cod_random_arbitrary(void)
{
    struct wm_checksum like = {.method = WM_SUM_COD, .cod_method = WM_SUM_SHA256}, got;
    struct integrity_ctx *ctx = integrity_begin(&like, NULL);
    ASSERT_TRUE(ctx != NULL);
    integrity_update(ctx, "ab", 2);
    integrity_update(ctx, "c", 1);
    ASSERT_EQ_INT(integrity_finish(&ctx, &got), WM_OK);
    ASSERT_EQ_INT(got.method, WM_SUM_SHA256);
    ASSERT_EQ_STR(hex_of(&got), SHA256_ABC_HEX);

    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_RANDOM, NULL, "x", 1, &got), WM_OK);
    ASSERT_EQ_INT(got.method, WM_SUM_RANDOM);
    ASSERT_EQ_INT(got.len, 16);
    struct wm_checksum token = {.method = WM_SUM_RANDOM, .len = 3, .value = "417"};
    ctx = integrity_begin(&token, NULL);
    ASSERT_EQ_INT(integrity_finish(&ctx, &got), WM_OK);
    ASSERT_TRUE(integrity_equal(&got, &token));

    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_ARBITRARY, NULL, "x", 1, &got), WM_ERR_METHOD);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_COD, NULL, "x", 1, &got), WM_ERR_METHOD);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_NONE, NULL, "x", 1, &got), WM_ERR_METHOD);
    struct wm_checksum tag = {.method = WM_SUM_ARBITRARY, .len = 5, .value = "hello"};
    ctx = integrity_begin(&tag, NULL);
    integrity_update(ctx, "ignored", 7);
    ASSERT_EQ_INT(integrity_finish(&ctx, &got), WM_OK);
    ASSERT_TRUE(integrity_equal(&got, &tag));
    struct integrity_ctx *aborted =
        integrity_begin(&(struct wm_checksum){.method = WM_SUM_MD5}, NULL);
    integrity_abort(&aborted);
    ASSERT_TRUE(aborted == NULL);
}

static void test_equal(void)
{
    struct wm_checksum a = {.method = WM_SUM_MD5, .len = 16}, b = a;
    ASSERT_TRUE(integrity_equal(&a, &b));
    b.value[15] = 1;
    ASSERT_TRUE(!integrity_equal(&a, &b));
    b = a;
    b.method = WM_SUM_MD5NAME;
    ASSERT_TRUE(!integrity_equal(&a, &b));
    ASSERT_TRUE(!integrity_equal(&a, NULL));
}

int main(void)
{
    test_method_names();
    test_vectors();
    test_md5name();
    test_value_parse();
    test_streaming();
    test_fd();
    test_cod_random_arbitrary();
    test_equal();
    return TEST_REPORT();
}
