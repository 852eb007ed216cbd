/*
 * The temporary folder of a harness and small helpers for the harnesses.
 */

#include "config.h"

#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir[PATH_MAX];

/* Removes the files of the temporary folder, then the folder.  The
 * harnesses create no subfolders. */
static void fuzz_remove_temp_dir(void)
{
	DIR *dir = opendir(fuzz_dir);
	struct dirent *entry;

	if (dir) {
		while ((entry = readdir(dir)))
			if (strcmp(entry->d_name, ".") != 0 &&
			    strcmp(entry->d_name, "..") != 0)
				unlinkat(dirfd(dir), entry->d_name, 0);
		closedir(dir);
	}
	rmdir(fuzz_dir);
}

const char *fuzz_temp_dir(void)
{
	const char *base = getenv("TMPDIR");

	if (fuzz_dir[0])
		return fuzz_dir;
	if (!base || !*base)
		base = "/tmp";
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/cloudapp-fuzz-XXXXXX", base);
	if (!mkdtemp(fuzz_dir)) {
		perror("fuzz: cannot create a temporary folder");
		abort();
	}
	atexit(fuzz_remove_temp_dir);
	return fuzz_dir;
}

char *fuzz_write_file(const char *name, const void *data, size_t size,
		      mode_t mode)
{
	char *path = NULL;
	int fd;

	if (asprintf(&path, "%s/%s", fuzz_temp_dir(), name) < 0)
		return NULL;
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);

	if (!copy)
		return NULL;
	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';
	return copy;
}
