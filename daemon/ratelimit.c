/*
 * The token bucket and the per-uid request counter.  Both take the time
 * from the caller (CLOCK_MONOTONIC in microseconds), so tests can drive
 * them without sleeping.
 */

#include "config.h"

#include "ratelimit.h"

#include <stdlib.h>

void token_bucket_init(struct token_bucket *bucket, double rate, double burst,
		       uint64_t now_usec)
{
	bucket->rate = rate;
	bucket->burst = burst < 1 ? 1 : burst;
	bucket->tokens = bucket->burst;
	bucket->refilled_usec = now_usec;
}

uint64_t token_bucket_take(struct token_bucket *bucket, uint64_t now_usec)
{
	double missing;

	if (now_usec > bucket->refilled_usec) {
		bucket->tokens += (double)(now_usec - bucket->refilled_usec) *
				  bucket->rate / RATELIMIT_USEC_PER_SEC;
		if (bucket->tokens > bucket->burst)
			bucket->tokens = bucket->burst;
		bucket->refilled_usec = now_usec;
	}
	if (bucket->tokens >= 1) {
		bucket->tokens -= 1;
		return 0;
	}
	missing = 1 - bucket->tokens;
	/* Round up, so the caller never wakes a moment too early. */
	return (uint64_t)(missing * RATELIMIT_USEC_PER_SEC / bucket->rate) + 1;
}

struct uid_entry {
	struct uid_entry *next;
	uid_t uid;
	uint64_t window_start_usec;
	unsigned count;
};

struct uid_counter {
	unsigned max;
	struct uid_entry *entries;
};

struct uid_counter *uid_counter_new(unsigned max)
{
	struct uid_counter *counter = calloc(1, sizeof(*counter));

	if (counter)
		counter->max = max;
	return counter;
}

void uid_counter_set_max(struct uid_counter *counter, unsigned max)
{
	counter->max = max;
}

void uid_counter_free(struct uid_counter *counter)
{
	if (!counter)
		return;
	while (counter->entries) {
		struct uid_entry *e = counter->entries;

		counter->entries = e->next;
		free(e);
	}
	free(counter);
}

/* Forgets the uids whose window has ended, so the list stays as short as
 * the number of uids active in the last minute. */
static void uid_counter_expire(struct uid_counter *counter, uint64_t now_usec)
{
	struct uid_entry **p = &counter->entries;

	while (*p) {
		struct uid_entry *e = *p;

		if (now_usec - e->window_start_usec >= RATELIMIT_WINDOW_USEC) {
			*p = e->next;
			free(e);
		} else {
			p = &e->next;
		}
	}
}

bool uid_counter_hit(struct uid_counter *counter, uid_t uid,
		     uint64_t now_usec, uint64_t *ret_retry_usec)
{
	struct uid_entry *e;

	uid_counter_expire(counter, now_usec);
	for (e = counter->entries; e; e = e->next)
		if (e->uid == uid)
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		/* Without memory to count, let the request through. */
		if (!e)
			return true;
		e->uid = uid;
		e->window_start_usec = now_usec;
		e->next = counter->entries;
		counter->entries = e;
	}
	if (e->count >= counter->max) {
		*ret_retry_usec =
			e->window_start_usec + RATELIMIT_WINDOW_USEC - now_usec;
		return false;
	}
	e->count++;
	return true;
}
