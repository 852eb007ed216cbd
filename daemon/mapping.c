/*
 * EndUserId mapping.  App Streaming accepts only convenience account names
 * of 3 to 24 characters from a-z, 0-9 and _, so every result is checked
 * here, before any cloud call.  User names may come from local accounts,
 * LDAP or AD, as "alice", "alice@corp.example" or "CORP\alice".
 */

#include "config.h"

#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Maximum host name length kept for %h, HOST_NAME_MAX on Linux. */
#define MAPPING_HOST_NAME_MAX 64

int mapping_check_template(const char *template, char **ret_error)
{
	*ret_error = NULL;
	for (const char *p = template; *p; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p && strchr("uUdnh%", *p))
			continue;
		if (asprintf(ret_error,
			     "\"%s\" has an unknown placeholder %%%.1s; use %%u "
			     "(user name), %%U (uid), %%d (domain), %%n (name "
			     "without domain), %%h (short host name) or %%%% (a "
			     "percent sign)",
			     template, *p ? p : "") < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	return 0;
}

bool mapping_end_user_id_valid(const char *end_user_id)
{
	size_t len = strlen(end_user_id);

	if (len < MAPPING_END_USER_ID_MIN || len > MAPPING_END_USER_ID_MAX)
		return false;
	for (const char *p = end_user_id; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	}
	return true;
}

/* The parts of "user@domain" or "DOMAIN\user"; plain names have no
 * domain.  The strings point into user or are "". */
struct user_parts {
	const char *name;
	size_t name_len;
	const char *domain;
	size_t domain_len;
};

static struct user_parts split_user(const char *user)
{
	const char *at = strrchr(user, '@');
	const char *backslash = strchr(user, '\\');
	struct user_parts parts = { user, strlen(user), "", 0 };

	if (backslash) {
		parts.domain = user;
		parts.domain_len = (size_t)(backslash - user);
		parts.name = backslash + 1;
		parts.name_len = strlen(backslash + 1);
	} else if (at) {
		parts.name_len = (size_t)(at - user);
		parts.domain = at + 1;
		parts.domain_len = strlen(at + 1);
	}
	return parts;
}

static void short_host_name(char host[MAPPING_HOST_NAME_MAX + 1])
{
	char *dot;

	if (gethostname(host, MAPPING_HOST_NAME_MAX + 1) < 0)
		host[0] = '\0';
	host[MAPPING_HOST_NAME_MAX] = '\0';
	dot = strchr(host, '.');
	if (dot)
		*dot = '\0';
}

/* Expands the template into out (an open memory stream). */
static void expand_template(const struct mapping_rules *rules,
			    const char *user, uid_t uid, FILE *out)
{
	struct user_parts parts = split_user(user);
	char host[MAPPING_HOST_NAME_MAX + 1];

	for (const char *p = rules->template; *p; p++) {
		if (p[0] != '%' || !p[1]) {
			fputc(*p, out);
			continue;
		}
		p++;
		switch (*p) {
		case 'u':
			if (rules->strip_domain)
				fwrite(parts.name, 1, parts.name_len, out);
			else
				fputs(user, out);
			break;
		case 'U':
			fprintf(out, "%lu", (unsigned long)uid);
			break;
		case 'd':
			fwrite(parts.domain, 1, parts.domain_len, out);
			break;
		case 'n':
			fwrite(parts.name, 1, parts.name_len, out);
			break;
		case 'h':
			short_host_name(host);
			fputs(host, out);
			break;
		default:
			fputc(*p, out);
			break;
		}
	}
}

static int compare_entry(const void *a, const void *b)
{
	return strcmp(((const struct mapping_entry *)a)->user,
		      ((const struct mapping_entry *)b)->user);
}

const char *mapping_map_lookup(const struct mapping_rules *rules,
			       const char *user)
{
	struct mapping_entry key = { .user = (char *)user };
	const struct mapping_entry *found;

	if (!rules->map)
		return NULL;
	found = bsearch(&key, rules->map, rules->map_len, sizeof(key),
			compare_entry);
	return found ? found->end_user_id : NULL;
}

int mapping_end_user_id(const struct mapping_rules *rules, const char *user,
			uid_t uid, char **ret_end_user_id, char **ret_error)
{
	const char *mapped = mapping_map_lookup(rules, user);
	char *out = NULL;
	size_t len = 0;
	FILE *stream;

	*ret_end_user_id = NULL;
	*ret_error = NULL;
	if (mapped) {
		/* Map entries were checked when the file was read. */
		*ret_end_user_id = strdup(mapped);
		return *ret_end_user_id ? 0 : -ENOMEM;
	}

	stream = open_memstream(&out, &len);
	if (!stream)
		return -ENOMEM;
	expand_template(rules, user, uid, stream);
	if (fclose(stream) != 0) {
		free(out);
		return -ENOMEM;
	}
	if (rules->lowercase)
		for (char *p = out; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');

	if (!mapping_end_user_id_valid(out)) {
		if (asprintf(ret_error,
			     "user %s maps to EndUserId \"%s\", which is not a "
			     "valid convenience account name (3 to 24 "
			     "characters of a-z, 0-9 and _); change "
			     "end_user_id or add the user to end_user_id_map",
			     user, out) < 0)
			*ret_error = NULL;
		free(out);
		return -EINVAL;
	}
	*ret_end_user_id = out;
	return 0;
}

void mapping_free_map(struct mapping_entry *map, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		free(map[i].user);
		free(map[i].end_user_id);
	}
	free(map);
}

/* value is quoted, and cut after 64 bytes. */
static int map_error(char **ret_error, const char *path, unsigned line,
		     const char *problem, const char *value)
{
	if (asprintf(ret_error, "%s:%u: %s%s%.64s%s", path, line, problem,
		     value ? " \"" : "", value ? value : "",
		     value ? "\"" : "") < 0)
		*ret_error = NULL;
	return -EINVAL;
}

/*
 * Opens the map file, which must be a regular file of at most
 * MAPPING_MAP_MAX bytes: a FIFO or a device would block or never end.
 */
static int map_open(const char *path, FILE **ret_file, char **ret_error)
{
	struct stat st;
	int fd, r;

	*ret_file = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (asprintf(ret_error, "cannot read %s: %s", path,
			     strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAPPING_MAP_MAX) {
		close(fd);
		if (asprintf(ret_error,
			     "%s is not a regular file of at most %d bytes",
			     path, MAPPING_MAP_MAX) < 0)
			*ret_error = NULL;
		return -EINVAL;
	}
	*ret_file = fdopen(fd, "r");
	if (!*ret_file) {
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

/* Parses one non-empty line into entry; returns 0 or -EINVAL. */
static int map_parse_line(char *text, const char *path, unsigned line,
			  struct mapping_entry *entry, char **ret_error)
{
	char *user, *end_user_id, *rest, *save = NULL;

	user = strtok_r(text, " \t", &save);
	end_user_id = strtok_r(NULL, " \t", &save);
	rest = strtok_r(NULL, " \t", &save);
	if (!user || !end_user_id || rest)
		return map_error(ret_error, path, line,
				 "expected \"linux-user end-user-id\"", NULL);
	if (!mapping_end_user_id_valid(end_user_id))
		return map_error(ret_error, path, line,
				 "not a valid EndUserId (3 to 24 characters "
				 "of a-z, 0-9 and _):",
				 end_user_id);
	entry->user = strdup(user);
	entry->end_user_id = strdup(end_user_id);
	return entry->user && entry->end_user_id ? 0 : -ENOMEM;
}

int mapping_load_map(const char *path, struct mapping_entry **ret_map,
		     size_t *ret_len, char **ret_error)
{
	struct mapping_entry *map = NULL;
	size_t len = 0, cap = 0;
	char *text = NULL;
	size_t text_cap = 0;
	unsigned line = 0;
	ssize_t n;
	FILE *file;
	int r = 0;

	*ret_map = NULL;
	*ret_len = 0;
	*ret_error = NULL;
	r = map_open(path, &file, ret_error);
	if (r < 0)
		return r;
	while ((n = getline(&text, &text_cap, file)) >= 0) {
		char *p = text;

		line++;
		if (strlen(text) != (size_t)n) {
			r = map_error(ret_error, path, line,
				      "contains a NUL byte", NULL);
			break;
		}
		text[strcspn(text, "\r\n")] = '\0';
		p += strspn(p, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		if (len == cap) {
			struct mapping_entry *grown;

			cap = cap ? cap * 2 : 16;
			grown = realloc(map, cap * sizeof(*map));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			map = grown;
		}
		memset(&map[len], 0, sizeof(map[len]));
		map[len].line = line;
		r = map_parse_line(p, path, line, &map[len], ret_error);
		len++;
		if (r < 0)
			break;
	}
	if (r == 0 && ferror(file))
		r = map_error(ret_error, path, line + 1, "read failed:",
			      strerror(errno));
	free(text);
	fclose(file);

	/* A file of comments only has no entries, and map is still NULL,
	 * which qsort() must not get. */
	if (r == 0 && len > 0) {
		qsort(map, len, sizeof(*map), compare_entry);
		for (size_t i = 1; i < len; i++)
			if (strcmp(map[i - 1].user, map[i].user) == 0) {
				unsigned later = map[i].line > map[i - 1].line ?
							 map[i].line :
							 map[i - 1].line;

				r = map_error(ret_error, path, later,
					      "the user appears twice:",
					      map[i].user);
				break;
			}
	}
	if (r < 0) {
		mapping_free_map(map, len);
		return r;
	}
	*ret_map = map;
	*ret_len = len;
	return 0;
}
