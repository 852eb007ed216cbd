/*
 * Retry decisions for GetConnectionTicket calls.  The Throttling codes and
 * the TimeLeft header follow the official SDKs' handling of the same
 * responses (darabonba-openapi's ThrottlingError).
 */

#include "config.h"

#include "retry.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool retry_tls_trust_error(int curl_code)
{
	switch (curl_code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return true;
	default:
		return false;
	}
}

enum retry_class retry_classify(int curl_code, long http_status,
				const char *code)
{
	/* A certificate that failed verification fails again on retry. */
	if (retry_tls_trust_error(curl_code))
		return RETRY_NONE;
	/* No response: DNS, connect, TLS handshake, reset or timeout. */
	if (curl_code != 0)
		return RETRY_BACKOFF;
	if (code && (strcmp(code, "Throttling") == 0 ||
		     strncmp(code, "Throttling.", 11) == 0))
		return RETRY_THROTTLED;
	if (code && strcmp(code, "InvalidTimeStamp.Expired") == 0)
		return RETRY_CLOCK;
	/* Every request gets a new random nonce, so a reused one means the
	 * transport sent the same bytes twice: libcurl resends a request on
	 * a kept-alive connection that turned out closed. */
	if (code && strcmp(code, "SignatureNonceUsed") == 0)
		return RETRY_BACKOFF;
	if (http_status >= 500)
		return RETRY_BACKOFF;
	return RETRY_NONE;
}

int64_t retry_backoff_ms(unsigned attempt, uint32_t random)
{
	int64_t cap = RETRY_BACKOFF_FIRST_MS;

	for (unsigned i = 0; i < attempt && cap < RETRY_BACKOFF_MAX_MS; i++)
		cap *= 2;
	if (cap > RETRY_BACKOFF_MAX_MS)
		cap = RETRY_BACKOFF_MAX_MS;
	return cap / 2 + (int64_t)(random % (uint32_t)(cap / 2 + 1));
}

bool retry_time_left_ms(const char *header, int64_t *ret_ms)
{
	const char *p = header;

	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, "TimeLeft:", 9) == 0) {
			char *end;
			double seconds = strtod(p + 9, &end);

			if (end == p + 9 || seconds < 0 || seconds > 3600)
				return false;
			*ret_ms = (int64_t)(seconds * 1000);
			return true;
		}
		p = strchr(p, ',');
	}
	return false;
}

bool retry_clock_offset(const char *date, time_t local_now,
			int64_t *ret_offset)
{
	struct tm tm = { 0 };
	const char *end;
	time_t server;

	if (!date)
		return false;
	end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return false;
	server = timegm(&tm);
	if (server == (time_t)-1)
		return false;
	*ret_offset = (int64_t)server - (int64_t)local_now;
	return true;
}
