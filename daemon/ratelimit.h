/*
 * Limits that keep one busy host within the account's API quota: a token
 * bucket for API requests per second, and a per-uid count of ticket
 * requests per minute so that one local user cannot use up the quota.
 */

#ifndef CLOUDAPP_RATELIMIT_H
#define CLOUDAPP_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define RATELIMIT_USEC_PER_SEC UINT64_C(1000000)
#define RATELIMIT_WINDOW_USEC (60 * RATELIMIT_USEC_PER_SEC)

struct token_bucket {
	double rate;   /* tokens per second */
	double burst;  /* the most tokens kept */
	double tokens; /* available now */
	uint64_t refilled_usec;
};

void token_bucket_init(struct token_bucket *bucket, double rate, double burst,
		       uint64_t now_usec);

/*
 * Takes one token.  Returns 0 when one was available, or the microseconds
 * until the next token when none was.
 */
uint64_t token_bucket_take(struct token_bucket *bucket, uint64_t now_usec);

struct uid_counter;

/*
 * Counts ticket requests per uid in fixed one-minute windows.  max is the
 * limit per window.
 */
struct uid_counter *uid_counter_new(unsigned max);
void uid_counter_set_max(struct uid_counter *counter, unsigned max);
void uid_counter_free(struct uid_counter *counter);

/*
 * Counts one request by uid.  Returns true when it is within the limit,
 * or false with the microseconds until the window ends.
 */
bool uid_counter_hit(struct uid_counter *counter, uid_t uid,
		     uint64_t now_usec, uint64_t *ret_retry_usec);

#endif
