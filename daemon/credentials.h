/*
 * Sources of the AccessKey.  The sources are tried in this order,
 * and the first one that is present is used:
 *   1. systemd credentials: the files access-key-id, access-key-secret
 *      and, optionally, security-token in $CREDENTIALS_DIRECTORY, as
 *      LoadCredential= or LoadCredentialEncrypted= provide them;
 *   2. the configuration: access_key_id, access_key_secret_file and,
 *      optionally, security_token_file;
 *   3. the environment: ALIBABA_CLOUD_ACCESS_KEY_ID,
 *      ALIBABA_CLOUD_ACCESS_KEY_SECRET and, optionally,
 *      ALIBABA_CLOUD_SECURITY_TOKEN;
 *   4. the Alibaba Cloud shared credentials file named by
 *      ALIBABA_CLOUD_CREDENTIALS_FILE, section ALIBABA_CLOUD_PROFILE
 *      ("default" when unset), of type access_key or ram_role_arn.
 * Credentials read from files are read again when a file changes, so an
 * outside agent can rotate them without a restart.
 */

#ifndef CLOUDAPP_CREDENTIALS_H
#define CLOUDAPP_CREDENTIALS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "conf.h"

/* Files a source may read: key id, secret, token. */
#define CREDENTIALS_FILES_MAX 3

struct credentials {
	char *access_key_id;
	char *access_key_secret; /* wiped on clear */
	char *security_token;	 /* wiped on clear; NULL without STS */
	char source[512];	 /* where they came from, for status and logs */
	/* A role to assume, from a shared credentials file of type
	 * ram_role_arn, or NULL. */
	char *role_arn;
	char *role_session_name;
	/* The files read, and what they were, to see a rotation. */
	char *files[CREDENTIALS_FILES_MAX];
	struct stat file_stats[CREDENTIALS_FILES_MAX];
};

/*
 * Loads the credentials from the first source that is present.  Returns
 * 0, or a negative errno with a message in *ret_error that names the
 * source and the file.
 */
/*
 * True when systemd passed the AccessKey as credentials ($CREDENTIALS_
 * DIRECTORY/access-key-id exists), which then take precedence over the
 * configuration's key.
 */
bool credentials_systemd_present(void);

int credentials_load(const struct daemon_config *config,
		     struct credentials *ret_credentials, char **ret_error);

/*
 * Loads the credentials again when one of their files changed.  Returns
 * 1 when they were reloaded, 0 when nothing changed, or a negative errno
 * with *ret_error; on failure the old credentials stay.
 */
int credentials_refresh(const struct daemon_config *config,
			struct credentials *credentials, char **ret_error);

void credentials_clear(struct credentials *credentials);

#endif
