/*
 * The one percent-encoder of cloudapp-ticketd (RFC 3986: only A-Z a-z 0-9
 * - _ . ~ stay literal, every other byte becomes %XY with uppercase hex),
 * and the form body built from request parameters.  The same encoding is
 * used for the bytes sent and for the canonical request that is signed.
 */

#ifndef CLOUDAPP_ENCODE_H
#define CLOUDAPP_ENCODE_H

#include <stddef.h>

/* A request parameter; arrays are flattened by the caller ("Name.1"). */
struct encode_param {
	char *name;
	char *value;
};

/* Returns the encoded form of len bytes at s, malloc'd, or NULL. */
char *encode_percent(const char *s, size_t len);

/*
 * Sorts params by name in byte order (so "X.10" comes before "X.2", as the
 * signature requires) and returns "n1=v1&n2=v2" with names and values
 * percent-encoded, malloc'd, or NULL on allocation failure.  An empty value
 * gives "name=".
 */
char *encode_form(struct encode_param *params, size_t n_params);

#endif
