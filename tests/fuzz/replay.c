/*
 * Runs a fuzz harness over files without libFuzzer, so that "make check"
 * replays each committed corpus with the ordinary compiler.  With no
 * arguments it reads $top_srcdir/tests/fuzz/corpus/FUZZ_CORPUS_NAME;
 * otherwise each argument is a file or a folder of inputs.
 */

#include "config.h"

#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_CORPUS_NAME
#error "FUZZ_CORPUS_NAME must name the harness's corpus folder"
#endif

/* The largest input replayed; libFuzzer's own inputs are far smaller. */
#define REPLAY_INPUT_MAX (16L * 1024 * 1024)

/* Reads a whole file; returns 0 or a negative errno. */
static int replay_read(const char *path, uint8_t **ret_data, size_t *ret_size)
{
	FILE *file = fopen(path, "rbe");
	uint8_t *data;
	long size;

	if (!file)
		return -errno;
	if (fseek(file, 0, SEEK_END) < 0 || (size = ftell(file)) < 0 ||
	    size > REPLAY_INPUT_MAX || fseek(file, 0, SEEK_SET) < 0) {
		fclose(file);
		return -EFBIG;
	}
	/* One byte more, so that an empty file still gets a buffer. */
	data = malloc((size_t)size + 1);
	if (!data) {
		fclose(file);
		return -ENOMEM;
	}
	if (fread(data, 1, (size_t)size, file) != (size_t)size) {
		free(data);
		fclose(file);
		return -EIO;
	}
	fclose(file);
	*ret_data = data;
	*ret_size = (size_t)size;
	return 0;
}

static int replay_file(const char *path)
{
	uint8_t *data = NULL;
	size_t size = 0;
	int r = replay_read(path, &data, &size);

	if (r < 0) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path,
			strerror(-r));
		return r;
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

static int skip_hidden(const struct dirent *entry)
{
	return entry->d_name[0] != '.';
}

/* Replays every file of a folder in name order; returns the count or a
 * negative errno. */
static int replay_folder(const char *folder)
{
	struct dirent **entries;
	int n = scandir(folder, &entries, skip_hidden, alphasort);
	int count = 0, r = 0;

	if (n < 0) {
		r = -errno;
		fprintf(stderr, "replay: cannot list %s: %s\n", folder,
			strerror(-r));
		return r;
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;

		if (r == 0 && asprintf(&path, "%s/%s", folder,
				       entries[i]->d_name) < 0)
			r = -ENOMEM;
		if (r == 0) {
			printf("replay: %s\n", path);
			fflush(stdout);
			r = replay_file(path);
			count++;
		}
		free(path);
		free(entries[i]);
	}
	free(entries);
	return r < 0 ? r : count;
}

static int replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;

		fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode))
		return replay_folder(path);
	return replay_file(path) < 0 ? -EIO : 1;
}

int main(int argc, char **argv)
{
	const char *top_srcdir = getenv("top_srcdir");
	char *folder = NULL;
	int count = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			int r = replay_path(argv[i]);

			if (r < 0)
				return EXIT_FAILURE;
			count += r;
		}
	} else {
		if (asprintf(&folder, "%s/tests/fuzz/corpus/%s",
			     top_srcdir ? top_srcdir : ".",
			     FUZZ_CORPUS_NAME) < 0)
			return EXIT_FAILURE;
		count = replay_folder(folder);
		free(folder);
		if (count < 0)
			return EXIT_FAILURE;
	}
	/* An empty corpus would make the test pass without testing. */
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return EXIT_FAILURE;
	}
	printf("replay: %d inputs of %s without a crash\n", count,
	       FUZZ_CORPUS_NAME);
	return EXIT_SUCCESS;
}
