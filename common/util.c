/*
 * Small helpers shared by the daemon, the PAM module and cloudappctl.
 */

#include "config.h"

#include "util.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

/* Buffer sizes tried for getpwnam_r(), doubling from the first on ERANGE. */
#define UTIL_PASSWD_BUFFER_MIN 1024
#define UTIL_PASSWD_BUFFER_MAX ((size_t)1024 * 1024)

void cloudapp_wipe(void *p, size_t n)
{
	/* explicit_bzero is in glibc since 2.25 and is not optimized away. */
	if (p && n)
		explicit_bzero(p, n);
}

void cloudapp_free_secret(char *s)
{
	if (!s)
		return;
	cloudapp_wipe(s, strlen(s));
	free(s);
}

int cloudapp_parse_seconds(const char *text, int64_t max_ms, int64_t *ret_ms)
{
	int64_t whole = 0, fraction = 0, scale = 100;
	const char *p = text;

	if (!text || !*text)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (*p - '0');
		if (whole > max_ms / 1000 + 1)
			return -EINVAL;
	}
	if (p == text)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			fraction += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p != '\0')
		return -EINVAL;
	if (whole * 1000 + fraction > max_ms)
		return -EINVAL;
	*ret_ms = whole * 1000 + fraction;
	return 0;
}

bool cloudapp_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;

	while (p < end) {
		uint32_t cp;
		int extra;

		if (*p < 0x80) {
			p++;
			continue;
		} else if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			extra = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			extra = 2;
		} else if ((*p & 0xf8) == 0xf0) {
			cp = *p & 0x07;
			extra = 3;
		} else {
			return false;
		}
		if (end - p <= extra)
			return false;
		for (int i = 1; i <= extra; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += extra + 1;
	}
	return true;
}

void cloudapp_utf8_trim(char *s)
{
	size_t len = strlen(s), start = len;

	/* Find where the last character starts: at most 3 continuation
	 * bytes (10xxxxxx) back. */
	while (start > 0 && len - start < 4 &&
	       ((unsigned char)s[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return;
	start--;
	if (!cloudapp_utf8_valid(s + start, len - start))
		s[start] = '\0';
}

int cloudapp_service_uid(uid_t *ret_uid)
{
	struct passwd pw, *result = NULL;
	size_t size = UTIL_PASSWD_BUFFER_MIN;
	char *buf = NULL;
	int r;

	for (;;) {
		free(buf);
		buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		r = getpwnam_r(CLOUDAPP_SERVICE_USER, &pw, buf, size, &result);
		if (r != ERANGE || size >= UTIL_PASSWD_BUFFER_MAX)
			break;
		size *= 2;
	}
	if (r == 0 && result)
		*ret_uid = pw.pw_uid;
	free(buf);
	if (r != 0)
		return -r;
	return result ? 0 : -ENOENT;
}
