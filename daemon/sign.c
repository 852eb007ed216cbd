/*
 * ACS3-HMAC-SHA256 signing:
 *
 *   CanonicalRequest = Method \n Path \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n PayloadHash
 *   StringToSign     = "ACS3-HMAC-SHA256" \n hex(SHA256(CanonicalRequest))
 *   Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
 *
 * CanonicalHeaders ends with its own newline, so an empty line separates it
 * from SignedHeaders.
 */

#include "config.h"

#include "sign.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/sha.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#endif

#include "encode.h"
#include "util.h"

/* A header after filtering: lowercase name, trimmed value, both owned. */
struct canonical_header {
	char *name;
	char *value;
};

static void hex_encode(const unsigned char *bytes, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/*
 * OpenSSL 3's one-shot SHA256() and HMAC() look up the algorithm
 * implementation on every call, and the lookups cost more than hashing a
 * request.  The daemon runs one thread, so these are fetched once and
 * kept for the life of the process.
 */
static EVP_MD *sign_sha256_md(void)
{
	static EVP_MD *md;

	if (!md)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return md;
}

/* Returns the HMAC-SHA256 context that sign_authorization() keys anew on
 * every call, or NULL when OpenSSL cannot provide it. */
static EVP_MAC_CTX *sign_hmac_sha256_ctx(void)
{
	static EVP_MAC_CTX *ctx;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac;

	if (ctx)
		return ctx;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return NULL;
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (ctx && !EVP_MAC_CTX_set_params(ctx, params)) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}
#endif

void sign_sha256_hex(const void *data, size_t len, char hex[SIGN_HEX_SIZE])
{
	unsigned char digest[SHA256_DIGEST_LENGTH];

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD *md = sign_sha256_md();

	if (!md || !EVP_Digest(data, len, digest, NULL, md, NULL))
		SHA256(data, len, digest);
#else
	SHA256(data, len, digest);
#endif
	hex_encode(digest, sizeof(digest), hex);
}

/* Computes HMAC-SHA256 of message under key into mac, which has room for
 * SHA256_DIGEST_LENGTH bytes.  Returns false on failure. */
static bool sign_hmac_sha256(const char *key, const char *message,
			     unsigned char *mac, unsigned int *ret_mac_len)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MAC_CTX *ctx = sign_hmac_sha256_ctx();
	size_t len = 0;

	if (ctx && EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key),
				NULL) &&
	    EVP_MAC_update(ctx, (const unsigned char *)message,
			   strlen(message)) &&
	    EVP_MAC_final(ctx, mac, &len, SHA256_DIGEST_LENGTH)) {
		*ret_mac_len = (unsigned int)len;
		return true;
	}
#endif
	return HMAC(EVP_sha256(), key, (int)strlen(key),
		    (const unsigned char *)message, strlen(message), mac,
		    ret_mac_len) != NULL;
}

static bool header_is_signed(const char *lower_name)
{
	return strcmp(lower_name, "host") == 0 ||
	       strcmp(lower_name, "content-type") == 0 ||
	       strncmp(lower_name, "x-acs-", 6) == 0;
}

static char *lowercase_dup(const char *s)
{
	char *out = strdup(s);

	for (char *p = out; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static char *trim_dup(const char *s)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return strndup(s, len);
}

static int compare_headers(const void *a, const void *b)
{
	const struct canonical_header *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : strcmp(x->value, y->value);
}

static void free_headers(struct canonical_header *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		free(list[i].value);
	}
	free(list);
}

/* Filters, lowercases, trims and sorts the headers to sign. */
static struct canonical_header *
canonical_headers_new(const struct sign_header *headers, size_t n_headers,
		      size_t *ret_n)
{
	struct canonical_header *list;
	size_t n = 0;

	list = calloc(n_headers ? n_headers : 1, sizeof(*list));
	if (!list)
		return NULL;
	for (size_t i = 0; i < n_headers; i++) {
		char *name = lowercase_dup(headers[i].name);

		if (!name)
			goto fail;
		if (!header_is_signed(name)) {
			free(name);
			continue;
		}
		list[n].name = name;
		list[n].value = trim_dup(headers[i].value);
		if (!list[n++].value)
			goto fail;
	}
	qsort(list, n, sizeof(*list), compare_headers);
	*ret_n = n;
	return list;

fail:
	free_headers(list, n);
	return NULL;
}

/* A growing string; on allocation failure it turns NULL and stays so. */
struct strbuf {
	char *s;
	size_t len, cap;
};

static void strbuf_append(struct strbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (!b->s && b->cap)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *grown;

		while (cap < b->len + n + 1)
			cap *= 2;
		grown = realloc(b->s, cap);
		if (!grown) {
			free(b->s);
			b->s = NULL;
			b->cap = 1;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

char *sign_canonical_request(const char *method, const char *path,
			     const char *canonical_query,
			     const struct sign_header *headers,
			     size_t n_headers, const char *payload_hash,
			     char **ret_signed_headers)
{
	struct strbuf request = { 0 }, names = { 0 };
	struct canonical_header *list;
	size_t n = 0;

	list = canonical_headers_new(headers, n_headers, &n);
	if (!list)
		return NULL;

	strbuf_append(&request, method);
	strbuf_append(&request, "\n");
	strbuf_append(&request, path && *path ? path : "/");
	strbuf_append(&request, "\n");
	strbuf_append(&request, canonical_query ? canonical_query : "");
	strbuf_append(&request, "\n");
	for (size_t i = 0; i < n; i++) {
		bool same_as_next = i + 1 < n &&
				    strcmp(list[i].name, list[i + 1].name) == 0;
		bool same_as_previous = i > 0 && strcmp(list[i].name,
							list[i - 1].name) == 0;

		if (!same_as_previous) {
			strbuf_append(&request, list[i].name);
			strbuf_append(&request, ":");
			if (names.len)
				strbuf_append(&names, ";");
			strbuf_append(&names, list[i].name);
		}
		strbuf_append(&request, list[i].value);
		strbuf_append(&request, same_as_next ? "," : "\n");
	}
	strbuf_append(&request, "\n");
	strbuf_append(&names, "");
	strbuf_append(&request, names.s ? names.s : "");
	strbuf_append(&request, "\n");
	strbuf_append(&request, payload_hash);
	free_headers(list, n);

	if (!request.s || !names.s) {
		free(request.s);
		free(names.s);
		return NULL;
	}
	*ret_signed_headers = names.s;
	return request.s;
}

char *sign_authorization(const char *method, const char *path,
			 const char *canonical_query,
			 const struct sign_header *headers, size_t n_headers,
			 const char *payload_hash, const char *access_key_id,
			 const char *access_key_secret)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char request_hash[SIGN_HEX_SIZE], signature[SIGN_HEX_SIZE];
	char string_to_sign[sizeof(SIGN_ALGORITHM) + SIGN_HEX_SIZE];
	char *request, *signed_headers = NULL, *authorization = NULL;
	int len;

	request = sign_canonical_request(method, path, canonical_query,
					 headers, n_headers, payload_hash,
					 &signed_headers);
	if (!request)
		return NULL;
	sign_sha256_hex(request, strlen(request), request_hash);
	free(request);

	snprintf(string_to_sign, sizeof(string_to_sign), "%s\n%s",
		 SIGN_ALGORITHM, request_hash);
	if (!sign_hmac_sha256(access_key_secret, string_to_sign, mac,
			      &mac_len)) {
		free(signed_headers);
		return NULL;
	}
	hex_encode(mac, mac_len, signature);
	cloudapp_wipe(mac, sizeof(mac));

	len = asprintf(&authorization,
		       "%s Credential=%s,SignedHeaders=%s,Signature=%s",
		       SIGN_ALGORITHM, access_key_id, signed_headers, signature);
	free(signed_headers);
	return len < 0 ? NULL : authorization;
}

char *sign_v2_signature(const char *method, const char *canonical_query,
			const char *access_key_secret)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char *encoded_query, *string_to_sign = NULL, *key = NULL;
	char *signature = NULL;
	int len;

	encoded_query = encode_percent(canonical_query,
				       strlen(canonical_query));
	if (!encoded_query)
		return NULL;
	len = asprintf(&string_to_sign, "%s&%%2F&%s", method, encoded_query);
	free(encoded_query);
	if (len < 0)
		return NULL;
	/* V2 keys the HMAC with the secret followed by "&". */
	if (asprintf(&key, "%s&", access_key_secret) < 0) {
		free(string_to_sign);
		return NULL;
	}
	if (HMAC(EVP_sha1(), key, (int)strlen(key),
		 (const unsigned char *)string_to_sign, strlen(string_to_sign),
		 mac, &mac_len)) {
		signature = malloc(4 * ((mac_len + 2) / 3) + 1);
		if (signature)
			EVP_EncodeBlock((unsigned char *)signature, mac,
					(int)mac_len);
	}
	cloudapp_wipe(mac, sizeof(mac));
	cloudapp_free_secret(key);
	free(string_to_sign);
	return signature;
}
