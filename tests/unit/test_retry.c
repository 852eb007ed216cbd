/*
 * Retry decision tests: which failures are retried, the backoff bounds,
 * the Throttling header and the clock offset from a Date header.
 */

#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "retry.h"

static void classify_failures(void **state)
{
	/* 7 is CURLE_COULDNT_CONNECT, 28 CURLE_OPERATION_TIMEDOUT. */
	assert_int_equal(retry_classify(7, 0, NULL), RETRY_BACKOFF);
	assert_int_equal(retry_classify(28, 0, NULL), RETRY_BACKOFF);
	assert_int_equal(retry_classify(0, 500, "InternalError"),
			 RETRY_BACKOFF);
	assert_int_equal(retry_classify(0, 503, NULL), RETRY_BACKOFF);
	assert_int_equal(retry_classify(0, 400, "Throttling"),
			 RETRY_THROTTLED);
	assert_int_equal(retry_classify(0, 400, "Throttling.User"),
			 RETRY_THROTTLED);
	assert_int_equal(retry_classify(0, 400, "Throttling.Api"),
			 RETRY_THROTTLED);
	assert_int_equal(retry_classify(0, 400, "InvalidTimeStamp.Expired"),
			 RETRY_CLOCK);
	assert_int_equal(retry_classify(0, 400, "SignatureDoesNotMatch"),
			 RETRY_NONE);
	assert_int_equal(retry_classify(0, 400, "SignatureNonceUsed"),
			 RETRY_BACKOFF);
	assert_int_equal(retry_classify(0, 403, "Forbidden.RAM"), RETRY_NONE);
	assert_int_equal(retry_classify(0, 404, NULL), RETRY_NONE);
	assert_int_equal(retry_classify(0, 400, "ThrottlingX"), RETRY_NONE);
}

static void classify_certificate_failures(void **state)
{
	/* Wrong CA or wrong host name: retrying cannot help. */
	assert_int_equal(retry_classify(CURLE_PEER_FAILED_VERIFICATION, 0,
					NULL),
			 RETRY_NONE);
	assert_int_equal(retry_classify(CURLE_SSL_CACERT_BADFILE, 0, NULL),
			 RETRY_NONE);
	assert_true(retry_tls_trust_error(CURLE_PEER_FAILED_VERIFICATION));
	/* A failed handshake (a reset, say) may pass the next time. */
	assert_false(retry_tls_trust_error(CURLE_SSL_CONNECT_ERROR));
	assert_int_equal(retry_classify(CURLE_SSL_CONNECT_ERROR, 0, NULL),
			 RETRY_BACKOFF);
}

static void backoff_bounds(void **state)
{
	static const uint32_t randoms[] = { 0, 1, 12345, UINT32_MAX };

	for (size_t i = 0; i < sizeof(randoms) / sizeof(randoms[0]); i++) {
		int64_t first = retry_backoff_ms(0, randoms[i]);
		int64_t late = retry_backoff_ms(20, randoms[i]);

		assert_true(first >= RETRY_BACKOFF_FIRST_MS / 2);
		assert_true(first <= RETRY_BACKOFF_FIRST_MS);
		assert_true(late >= RETRY_BACKOFF_MAX_MS / 2);
		assert_true(late <= RETRY_BACKOFF_MAX_MS);
	}
	/* The cap doubles per attempt. */
	assert_true(retry_backoff_ms(1, 0) >= RETRY_BACKOFF_FIRST_MS);
	assert_true(retry_backoff_ms(2, 0) >= (int64_t)2 * RETRY_BACKOFF_FIRST_MS);
}

static void time_left_header(void **state)
{
	int64_t ms = -1;

	assert_true(retry_time_left_ms("Limit:10,Remain:0,TimeLeft:3,Reset:3",
				       &ms));
	assert_int_equal(ms, 3000);
	assert_true(retry_time_left_ms("TimeLeft:0.5", &ms));
	assert_int_equal(ms, 500);
	assert_false(retry_time_left_ms("Limit:10,Remain:0", &ms));
	assert_false(retry_time_left_ms("TimeLeft:abc", &ms));
	assert_false(retry_time_left_ms("TimeLeft:-4", &ms));
	assert_false(retry_time_left_ms("TimeLeft:99999", &ms));
	assert_false(retry_time_left_ms("", &ms));
}

static void clock_offset(void **state)
{
	int64_t offset = 0;

	/* 784111777 is Sun, 06 Nov 1994 08:49:37 GMT. */
	assert_true(retry_clock_offset("Sun, 06 Nov 1994 08:49:37 GMT",
				       784111777 - 1200, &offset));
	assert_int_equal(offset, 1200);
	assert_true(retry_clock_offset("Sun, 06 Nov 1994 08:49:37 GMT",
				       784111777 + 30, &offset));
	assert_int_equal(offset, -30);
	assert_false(retry_clock_offset("yesterday", 0, &offset));
	assert_false(retry_clock_offset("Sun, 06 Nov 1994 08:49:37 GMT junk",
					0, &offset));
	assert_false(retry_clock_offset(NULL, 0, &offset));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classify_failures),
		cmocka_unit_test(classify_certificate_failures),
		cmocka_unit_test(backoff_bounds),
		cmocka_unit_test(time_left_header),
		cmocka_unit_test(clock_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
