/*
 * Shared by the libFuzzer harnesses in tests/fuzz and by replay.c, the
 * driver that runs a harness over its committed corpus without libFuzzer.
 */

#ifndef CLOUDAPP_FUZZ_H
#define CLOUDAPP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* The entry point libFuzzer calls for each input.  Returns 0, or -1 for
 * an input that the harness skips and the fuzzer should not keep. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Stops the process when a property of the code under test does not
 * hold, so that the fuzzer records the input as a crash.
 */
#define FUZZ_ASSERT(condition)                                                 \
	do {                                                                   \
		if (!(condition)) {                                            \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",       \
				__FILE__, __LINE__, #condition);               \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * Returns the harness's own temporary folder, created under $TMPDIR (or
 * /tmp) on first use and removed with its files when the process exits.
 * Harnesses write only there.
 */
const char *fuzz_temp_dir(void);

/*
 * Writes size bytes to the file name in the temporary folder with the
 * given mode.  Returns its malloc'd path, or NULL on failure.
 */
char *fuzz_write_file(const char *name, const void *data, size_t size,
		      mode_t mode);

/* Returns a malloc'd, NUL-terminated copy of size bytes, or NULL. */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
