/*
 * The placeholders of client_command, such as %{ticket_file}: the daemon
 * checks them when it reads the configuration, and cloudappctl expands
 * them when it starts the client.
 */

#ifndef CLOUDAPP_PLACEHOLDER_H
#define CLOUDAPP_PLACEHOLDER_H

#include <stdbool.h>

/* Returns true when name (without "%{" and "}") is a known placeholder. */
bool cloudapp_placeholder_known(const char *name);

/*
 * Checks every placeholder in one argument.  Returns true when they are
 * all known and terminated; otherwise false with a malloc'd message in
 * *ret_error (NULL when out of memory).
 */
bool cloudapp_placeholder_check(const char *argument, char **ret_error);

#endif
