/*
 * A preload library for test_limits.sh: OpenSSL's RAND_bytes() fails
 * while the file named by CLOUDAPP_TEST_FAIL_RAND exists, so that the
 * daemon cannot make a request's nonce.  Otherwise it calls the real one.
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

int RAND_bytes(unsigned char *buf, int num);

int RAND_bytes(unsigned char *buf, int num)
{
	static int (*real_rand_bytes)(unsigned char *, int);
	const char *flag = getenv("CLOUDAPP_TEST_FAIL_RAND");

	if (flag && access(flag, F_OK) == 0)
		return 0;
	if (!real_rand_bytes)
		real_rand_bytes = (int (*)(unsigned char *, int))dlsym(
			RTLD_NEXT, "RAND_bytes");
	return real_rand_bytes ? real_rand_bytes(buf, num) : 0;
}
