/* The request arena: alignment, zeroing, blocks for large requests, and the
 * reset a recycled request relies on (one standard block kept, the rest
 * freed; the ASan build runs this too, and its leak check would see a
 * block lost). */
#include "check.h"

#include <stdint.h>

#include "arena.h"

static void test_alloc(void)
{
    current_case = "alloc";
    sl_arena_t a;
    sl_arena_init(&a);
    char *p = sl_arena_alloc(&a, 3);
    CHECK_NOT_NULL(p);
    CHECK_INT(0, (uintptr_t)p % 16);
    CHECK_INT(0, p[0] | p[1] | p[2]);
    char *q = sl_arena_strndup(&a, "hello, arena", 5);
    CHECK_STR("hello", q);
    CHECK_INT(0, (uintptr_t)q % 16);
    CHECK_TRUE(q >= p + 16);
    /* larger than a block: a block of its own */
    char *big = sl_arena_alloc(&a, 100000);
    CHECK_NOT_NULL(big);
    big[99999] = 'x';
    CHECK_STR("hello", q);
    sl_arena_free(&a);
    CHECK_NULL(a.head);
}

static void test_reset_keeps_one_standard_block(void)
{
    current_case = "reset";
    sl_arena_t a;
    sl_arena_init(&a);
    sl_arena_reset(&a);   /* an empty arena stays empty */
    CHECK_NULL(a.head);
    char *first = sl_arena_alloc(&a, 64);
    for (int i = 0; i < 5; i++)   /* several standard blocks */
        CHECK_NOT_NULL(sl_arena_alloc(&a, 4000));
    CHECK_NOT_NULL(sl_arena_alloc(&a, 50000));   /* and an outsized one, last */
    sl_arena_reset(&a);
    CHECK_NOT_NULL(a.head);
    CHECK_INT(0, a.used);
    /* the next allocation comes from the kept block, zeroed */
    char *again = sl_arena_alloc(&a, 64);
    CHECK_NOT_NULL(again);
    CHECK_INT(0, again[0] | again[63]);
    CHECK_TRUE(first != NULL);
    sl_arena_reset(&a);
    sl_arena_free(&a);
    CHECK_NULL(a.head);
}

int main(void)
{
    test_alloc();
    test_reset_keeps_one_standard_block();
    return check_summary();
}
