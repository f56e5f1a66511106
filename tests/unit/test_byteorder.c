/* test_byteorder.c: little-endian reads and writes, against hand-written bytes. */
#include "byteorder.h"
#include "test.h"

int main(void)
{
    const unsigned char b[9] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xF8, 0xFF};
    ASSERT_EQ_INT(le16_read(b), 0x0201);
    ASSERT_EQ_INT(le16_read(b + 7), 0xFFF8);
    ASSERT_EQ_INT(le32_read(b), 0x04030201);
    ASSERT_EQ_INT(le32_read(b + 5), 0xFFF80706u);
    ASSERT_TRUE(le64_read(b) == 0xF807060504030201u);
    ASSERT_TRUE(le64_read(b + 1) == 0xFFF8070605040302u); /* unaligned */
    unsigned char w[9] = {0};
    le16_write(w, 0xBEEF);
    ASSERT_EQ_MEM(w, "\xEF\xBE", 2);
    le32_write(w + 1, 0xDEADBEEFu);
    ASSERT_EQ_MEM(w + 1, "\xEF\xBE\xAD\xDE", 4);
    le64_write(w + 1, 0x0123456789ABCDEFu);
    ASSERT_EQ_MEM(w + 1, "\xEF\xCD\xAB\x89\x67\x45\x23\x01", 8);
    ASSERT_TRUE(le64_read(w + 1) == 0x0123456789ABCDEFu);
    ASSERT_EQ_INT(w[0], 0xEF); /* nothing written outside */
    return TEST_REPORT();
}
