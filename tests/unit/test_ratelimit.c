/*
 * Token bucket and per-uid counter tests, driven by a fake clock.
 */

#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

#define SECOND RATELIMIT_USEC_PER_SEC

static void bucket_burst_then_rate(void **state)
{
	struct token_bucket bucket;
	uint64_t now = 1000;

	token_bucket_init(&bucket, 2.0, 2.0, now);
	assert_int_equal(token_bucket_take(&bucket, now), 0);
	assert_int_equal(token_bucket_take(&bucket, now), 0);

	/* Empty: the next token comes in half a second. */
	uint64_t wait = token_bucket_take(&bucket, now);
	assert_true(wait >= SECOND / 2);
	assert_true(wait <= SECOND / 2 + 1);

	now += wait;
	assert_int_equal(token_bucket_take(&bucket, now), 0);
	assert_true(token_bucket_take(&bucket, now) > 0);
}

static void bucket_never_exceeds_burst(void **state)
{
	struct token_bucket bucket;
	uint64_t now = 0;

	token_bucket_init(&bucket, 10.0, 3.0, now);
	now += 3600 * SECOND;
	for (int i = 0; i < 3; i++)
		assert_int_equal(token_bucket_take(&bucket, now), 0);
	assert_true(token_bucket_take(&bucket, now) > 0);
}

static void bucket_slow_rate(void **state)
{
	struct token_bucket bucket;

	/* Below one token per second the burst is still one request. */
	token_bucket_init(&bucket, 0.1, 0.1, 0);
	assert_int_equal(token_bucket_take(&bucket, 0), 0);
	assert_true(token_bucket_take(&bucket, 0) >= 10 * SECOND);
}

static void uid_counter_window(void **state)
{
	struct uid_counter *counter = uid_counter_new(2);
	uint64_t retry = 0;

	assert_non_null(counter);
	assert_true(uid_counter_hit(counter, 1000, 0, &retry));
	assert_true(uid_counter_hit(counter, 1000, SECOND, &retry));
	assert_false(uid_counter_hit(counter, 1000, 2 * SECOND, &retry));
	assert_int_equal(retry, RATELIMIT_WINDOW_USEC - 2 * SECOND);

	/* Another uid has its own count. */
	assert_true(uid_counter_hit(counter, 1001, 2 * SECOND, &retry));

	/* A new window starts after a minute. */
	assert_true(uid_counter_hit(counter, 1000, RATELIMIT_WINDOW_USEC,
				    &retry));
	uid_counter_free(counter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_burst_then_rate),
		cmocka_unit_test(bucket_never_exceeds_burst),
		cmocka_unit_test(bucket_slow_rate),
		cmocka_unit_test(uid_counter_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
