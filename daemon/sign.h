/*
 * Request signing with ACS3-HMAC-SHA256, the Alibaba Cloud OpenAPI
 * signature V3, computed with OpenSSL.
 */

#ifndef CLOUDAPP_SIGN_H
#define CLOUDAPP_SIGN_H

#include <stddef.h>

#define SIGN_ALGORITHM "ACS3-HMAC-SHA256"

/* Length of a SHA-256 digest in lowercase hex, NUL included. */
#define SIGN_HEX_SIZE 65

/* An HTTP header as given to the signer; the name may be in any case. */
struct sign_header {
	const char *name;
	const char *value;
};

/* Writes the lowercase hex SHA-256 of len bytes at data into hex. */
void sign_sha256_hex(const void *data, size_t len, char hex[SIGN_HEX_SIZE]);

/*
 * Builds the canonical request.  Only headers named host, content-type or
 * x-acs-* are signed; names are lowercased, values trimmed, repeated names
 * joined with ','.  canonical_query must already be encoded and sorted (see
 * encode_form).  Returns a malloc'd string and the signed header list in
 * *ret_signed_headers, or NULL on allocation failure.
 */
char *sign_canonical_request(const char *method, const char *path,
			     const char *canonical_query,
			     const struct sign_header *headers,
			     size_t n_headers, const char *payload_hash,
			     char **ret_signed_headers);

/*
 * Returns the Authorization header value ("ACS3-HMAC-SHA256
 * Credential=...,SignedHeaders=...,Signature=..."), malloc'd, or NULL.  An
 * empty method is taken as is, an empty path as "/".
 */
char *sign_authorization(const char *method, const char *path,
			 const char *canonical_query,
			 const struct sign_header *headers, size_t n_headers,
			 const char *payload_hash, const char *access_key_id,
			 const char *access_key_secret);

/*
 * Returns the signature V2 (HMAC-SHA1) of a request, Base64, malloc'd, or
 * NULL: Base64(HMAC-SHA1(secret + "&", METHOD + "&%2F&" +
 * percent-encode(canonical_query))), where canonical_query is the sorted,
 * encoded form of every parameter but Signature (see encode_form).
 */
char *sign_v2_signature(const char *method, const char *canonical_query,
			const char *access_key_secret);

#endif
