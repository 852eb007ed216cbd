/*
 * The credential sources of cloudapp-ticketd (see credentials.h for the
 * order).  Every file that contains a secret must be a regular file owned by
 * root or by the daemon's user, with no access for group or others.
 */

#include "config.h"

#include "credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Maximum line length read from the shared credentials file. */
#define CREDENTIALS_LINE_MAX 8192

void credentials_clear(struct credentials *c)
{
	free(c->access_key_id);
	cloudapp_free_secret(c->access_key_secret);
	cloudapp_free_secret(c->security_token);
	free(c->role_arn);
	free(c->role_session_name);
	for (size_t i = 0; i < CREDENTIALS_FILES_MAX; i++)
		free(c->files[i]);
	memset(c, 0, sizeof(*c));
}

/* Remembers a file the credentials were read from. */
static int credentials_watch(struct credentials *c, size_t slot,
			     const char *path)
{
	c->files[slot] = strdup(path);
	if (!c->files[slot])
		return -ENOMEM;
	if (stat(path, &c->file_stats[slot]) < 0)
		memset(&c->file_stats[slot], 0, sizeof(c->file_stats[slot]));
	return 0;
}

/* Reads a one-line secret file into *ret, naming the source on error. */
static int read_secret(const char *path, const char *source, char **ret,
		       char **ret_error)
{
	char *detail = NULL;
	int r = config_read_secret_file(path, ret, &detail);

	if (r < 0) {
		if (asprintf(ret_error, "%s: %s", source,
			     detail ? detail : strerror(-r)) < 0)
			*ret_error = NULL;
		free(detail);
	}
	return r;
}

/* Source 1: systemd credentials.  Returns 1 when absent. */
bool credentials_systemd_present(void)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];

	if (!dir || !*dir)
		return false;
	snprintf(path, sizeof(path), "%s/access-key-id", dir);
	return access(path, F_OK) == 0;
}

static int load_systemd(struct credentials *c, char **ret_error)
{
	static const char *const names[CREDENTIALS_FILES_MAX] = {
		"access-key-id", "access-key-secret", "security-token"
	};
	char **targets[CREDENTIALS_FILES_MAX] = {
		&c->access_key_id, &c->access_key_secret, &c->security_token
	};
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	int r;

	if (!dir || !*dir)
		return 1;
	snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
	if (access(path, F_OK) < 0)
		return 1;
	snprintf(c->source, sizeof(c->source), "systemd credentials in %s",
		 dir);
	for (size_t i = 0; i < CREDENTIALS_FILES_MAX; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		/* The token is optional: without it, no STS. */
		if (i == 2 && access(path, F_OK) < 0)
			break;
		r = read_secret(path, c->source, targets[i], ret_error);
		if (r == 0)
			r = credentials_watch(c, i, path);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Source 2: the configuration.  Returns 1 when absent. */
static int load_config(const struct daemon_config *config,
		       struct credentials *c, char **ret_error)
{
	int r;

	if (!config->access_key_id)
		return 1;
	snprintf(c->source, sizeof(c->source), "the configuration %s",
		 config->path);
	c->access_key_id = strdup(config->access_key_id);
	if (!c->access_key_id)
		return -ENOMEM;
	r = read_secret(config->access_key_secret_file, c->source,
			&c->access_key_secret, ret_error);
	if (r == 0)
		r = credentials_watch(c, 1, config->access_key_secret_file);
	if (r == 0 && config->security_token_file) {
		r = read_secret(config->security_token_file, c->source,
				&c->security_token, ret_error);
		if (r == 0)
			r = credentials_watch(c, 2,
					      config->security_token_file);
	}
	return r;
}

/* Source 3: the environment.  Returns 1 when absent. */
static int load_environment(struct credentials *c, char **ret_error)
{
	const char *id = getenv("ALIBABA_CLOUD_ACCESS_KEY_ID");
	const char *secret = getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
	const char *token = getenv("ALIBABA_CLOUD_SECURITY_TOKEN");

	if (!id || !*id)
		return 1;
	snprintf(c->source, sizeof(c->source), "the environment");
	if (!secret || !*secret) {
		if (asprintf(ret_error, "the environment: "
					"ALIBABA_CLOUD_ACCESS_KEY_ID is set but "
					"ALIBABA_CLOUD_ACCESS_KEY_SECRET is not") <
		    0)
			*ret_error = NULL;
		return -EINVAL;
	}
	c->access_key_id = strdup(id);
	c->access_key_secret = strdup(secret);
	if (token && *token)
		c->security_token = strdup(token);
	if (!c->access_key_id || !c->access_key_secret ||
	    (token && *token && !c->security_token))
		return -ENOMEM;
	return 0;
}

/* Trims spaces and tabs at both ends, in place. */
static char *trim(char *s)
{
	char *end;

	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* Stores value for key of the chosen section; unknown keys are ignored,
 * as the SDKs ignore them. */
static int ini_store(struct credentials *c, const char *key,
		     const char *value, char **type)
{
	char **target = strcmp(key, "access_key_id") == 0     ? &c->access_key_id :
			strcmp(key, "access_key_secret") == 0 ? &c->access_key_secret :
			strcmp(key, "role_arn") == 0	      ? &c->role_arn :
			strcmp(key, "role_session_name") == 0 ? &c->role_session_name :
			strcmp(key, "type") == 0	      ? type :
								NULL;

	if (!target)
		return 0;
	if (*target == c->access_key_secret)
		cloudapp_free_secret(*target);
	else
		free(*target);
	*target = strdup(value);
	return *target ? 0 : -ENOMEM;
}

/* Parses the section profile of the INI file at path. */
static int ini_parse(FILE *file, const char *path, const char *profile,
		     struct credentials *c, char **type, char **ret_error)
{
	char line[CREDENTIALS_LINE_MAX];
	bool in_section = false, found = false;
	unsigned number = 0;
	int r = 0;

	while (r == 0 && fgets(line, sizeof(line), file)) {
		char *p = trim(line), *equals;

		number++;
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		if (*p == '[') {
			char *end = strchr(p, ']');

			if (!end)
				break;
			*end = '\0';
			in_section = strcmp(trim(p + 1), profile) == 0;
			found = found || in_section;
			continue;
		}
		if (!in_section)
			continue;
		equals = strchr(p, '=');
		if (!equals) {
			if (asprintf(ret_error,
				     "%s:%u: expected \"key = value\"", path,
				     number) < 0)
				*ret_error = NULL;
			return -EINVAL;
		}
		*equals = '\0';
		r = ini_store(c, trim(p), trim(equals + 1), type);
	}
	cloudapp_wipe(line, sizeof(line));
	if (r == 0 && !found) {
		if (asprintf(ret_error, "%s has no section [%s]", path,
			     profile) < 0)
			*ret_error = NULL;
		return -ENOENT;
	}
	return r;
}

/* Source 4: the shared credentials file.  Returns 1 when absent. */
static int load_ini(struct credentials *c, char **ret_error)
{
	const char *path = getenv("ALIBABA_CLOUD_CREDENTIALS_FILE");
	const char *profile = getenv("ALIBABA_CLOUD_PROFILE");
	char *type = NULL;
	FILE *file;
	int fd, r;

	if (!path || !*path)
		return 1;
	if (!profile || !*profile)
		profile = "default";
	snprintf(c->source, sizeof(c->source),
		 "the credentials file %s, profile %s", path, profile);
	/* The same ownership and mode rules as for a secret file. */
	r = config_open_secret_file(path, &fd, ret_error);
	if (r < 0) {
		char *detail = *ret_error;

		if (asprintf(ret_error, "%s: %s", c->source,
			     detail ? detail : strerror(-r)) < 0)
			*ret_error = NULL;
		free(detail);
		return r;
	}
	file = fdopen(fd, "r");
	if (!file) {
		close(fd);
		return -ENOMEM;
	}
	r = ini_parse(file, path, profile, c, &type, ret_error);
	fclose(file);
	if (r == 0 && type && strcmp(type, "access_key") != 0 &&
	    strcmp(type, "ram_role_arn") != 0) {
		if (asprintf(ret_error, "%s: type %s is not supported; use "
					"access_key or ram_role_arn",
			     c->source, type) < 0)
			*ret_error = NULL;
		r = -EOPNOTSUPP;
	}
	if (r == 0 && type && strcmp(type, "ram_role_arn") == 0 &&
	    !c->role_arn) {
		if (asprintf(ret_error, "%s: type ram_role_arn needs role_arn",
			     c->source) < 0)
			*ret_error = NULL;
		r = -EINVAL;
	}
	/* A role_arn counts only with type ram_role_arn. */
	if (r == 0 && (!type || strcmp(type, "ram_role_arn") != 0)) {
		free(c->role_arn);
		c->role_arn = NULL;
	}
	if (r == 0 && (!c->access_key_id || !c->access_key_secret)) {
		if (asprintf(ret_error, "%s: access_key_id or access_key_secret "
					"is missing",
			     c->source) < 0)
			*ret_error = NULL;
		r = -EINVAL;
	}
	free(type);
	if (r == 0)
		r = credentials_watch(c, 0, path);
	return r;
}

int credentials_load(const struct daemon_config *config,
		     struct credentials *ret_credentials, char **ret_error)
{
	struct credentials c = { 0 };
	int r;

	*ret_error = NULL;
	r = load_systemd(&c, ret_error);
	if (r == 1)
		r = load_config(config, &c, ret_error);
	if (r == 1)
		r = load_environment(&c, ret_error);
	if (r == 1)
		r = load_ini(&c, ret_error);
	if (r == 1) {
		if (asprintf(ret_error,
			     "no credentials: set access_key_id and "
			     "access_key_secret_file in %s, or provide "
			     "systemd credentials, ALIBABA_CLOUD_ACCESS_KEY_ID "
			     "and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or "
			     "ALIBABA_CLOUD_CREDENTIALS_FILE",
			     config->path) < 0)
			*ret_error = NULL;
		r = -ENOENT;
	}
	if (r < 0) {
		credentials_clear(&c);
		return r;
	}
	*ret_credentials = c;
	return 0;
}

static bool file_changed(const char *path, const struct stat *before)
{
	struct stat now;

	if (stat(path, &now) < 0)
		return true;
	return now.st_ino != before->st_ino || now.st_dev != before->st_dev ||
	       now.st_size != before->st_size ||
	       now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
	       now.st_mtim.tv_nsec != before->st_mtim.tv_nsec;
}

int credentials_refresh(const struct daemon_config *config,
			struct credentials *credentials, char **ret_error)
{
	struct credentials fresh;
	bool changed = false;
	int r;

	*ret_error = NULL;
	for (size_t i = 0; i < CREDENTIALS_FILES_MAX; i++)
		if (credentials->files[i] &&
		    file_changed(credentials->files[i],
				 &credentials->file_stats[i]))
			changed = true;
	if (!changed)
		return 0;
	r = credentials_load(config, &fresh, ret_error);
	if (r < 0) {
		/* Try again on the next request, not on every one. */
		for (size_t i = 0; i < CREDENTIALS_FILES_MAX; i++)
			if (credentials->files[i] &&
			    stat(credentials->files[i],
				 &credentials->file_stats[i]) < 0)
				memset(&credentials->file_stats[i], 0,
				       sizeof(credentials->file_stats[i]));
		return r;
	}
	credentials_clear(credentials);
	*credentials = fresh;
	return 1;
}
