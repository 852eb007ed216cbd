/*
 * Small helpers shared by the daemon, the PAM module and cloudappctl.
 * Like protocol.h, this depends on libc only.
 */

#ifndef CLOUDAPP_UTIL_H
#define CLOUDAPP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest Linux user name accepted on the wire. */
#define CLOUDAPP_USER_NAME_MAX 256

/* Overwrites n bytes at p with zeros in a way the compiler keeps. */
void cloudapp_wipe(void *p, size_t n);

/* Wipes and frees a NUL-terminated string; NULL is fine. */
void cloudapp_free_secret(char *s);

/*
 * Parses a duration in seconds with an optional fraction ("2", "0.5") into
 * milliseconds.  Returns 0, or -EINVAL when text is not such a number or
 * is out of 0..max_ms.
 */
int cloudapp_parse_seconds(const char *text, int64_t max_ms, int64_t *ret_ms);

/* Returns true when s is valid UTF-8 without overlong forms or surrogates. */
bool cloudapp_utf8_valid(const char *s, size_t len);

/*
 * Cuts a NUL-terminated string that snprintf() may have cut inside a
 * UTF-8 character back to the last whole character, so that it stays
 * valid for JSON.
 */
void cloudapp_utf8_trim(char *s);

/*
 * Looks up the uid of the service user CLOUDAPP_SERVICE_USER, the system
 * user of cloudapp-ticketd.service.  Returns 0, -ENOENT when the user does
 * not exist, as on a host where the daemon runs only as root, or another
 * negative errno.
 */
int cloudapp_service_uid(uid_t *ret_uid);

#endif
