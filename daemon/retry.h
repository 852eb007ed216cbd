/*
 * Retry policy for failed GetConnectionTicket calls.  Network errors
 * (except certificate verification failures), timeouts, HTTP 5xx, the Throttling codes and SignatureNonceUsed are
 * retried with jittered exponential backoff.  InvalidTimeStamp.Expired is
 * retried after correcting the clock offset.
 */

#ifndef CLOUDAPP_RETRY_H
#define CLOUDAPP_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The first backoff and its cap, in milliseconds. */
#define RETRY_BACKOFF_FIRST_MS 500
#define RETRY_BACKOFF_MAX_MS 8000

enum retry_class {
	RETRY_NONE,	 /* a final error: report it */
	RETRY_BACKOFF,	 /* transient: wait retry_backoff_ms() */
	RETRY_THROTTLED, /* rate limited: wait TimeLeft, else back off */
	RETRY_CLOCK,	 /* the signed date was off: fix the clock offset */
};

/*
 * Classifies a failed call.  curl_code is curl's result (0 when a response
 * arrived), http_status the response's status and code the API's error
 * Code, or NULL when the body had none.
 */
enum retry_class retry_classify(int curl_code, long http_status,
				const char *code);

/*
 * True when curl_code means the endpoint's certificate failed verification
 * (unknown CA, wrong host name, unreadable ca_file), which no retry fixes.
 */
bool retry_tls_trust_error(int curl_code);

/*
 * Returns the wait before retry number attempt (0 for the first retry):
 * RETRY_BACKOFF_FIRST_MS doubled per attempt up to RETRY_BACKOFF_MAX_MS,
 * then a random point in its upper half, so that many clients that failed
 * together do not retry together.
 */
int64_t retry_backoff_ms(unsigned attempt, uint32_t random);

/*
 * Reads TimeLeft from an x-ratelimit-user-api or x-ratelimit-user header
 * value, a list of "Key:value" pairs separated by commas.  TimeLeft is in
 * seconds.  Returns true and the wait in milliseconds when it is present
 * and valid.
 */
bool retry_time_left_ms(const char *header, int64_t *ret_ms);

/*
 * Parses an HTTP Date header (RFC 9110 IMF-fixdate, such as "Sun, 06 Nov
 * 1994 08:49:37 GMT") and returns true with the offset in seconds to add
 * to local_now to get the server's time.
 */
bool retry_clock_offset(const char *date, time_t local_now,
			int64_t *ret_offset);

#endif
