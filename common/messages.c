/*
 * The failure classes a user can hit, from the wire protocol's error
 * names and the API's Codes, each with one message.
 */

#include "config.h"

#include "messages.h"

#include <stdbool.h>
#include <string.h>

#include "protocol.h"

static bool code_starts(const char *code, const char *prefix)
{
	return code && strncmp(code, prefix, strlen(prefix)) == 0;
}

const char *cloudapp_human_message(const char *error, const char *code)
{
	if (code_starts(code, "TryRegionBind.NoIdleAppInstance") ||
	    code_starts(code, "TryRegionBind.NoCandidateAppInstance") ||
	    code_starts(code, "Throttling"))
		return "No cloud app instance is free right now. Please try "
		       "again in a few minutes.";
	if (code_starts(code, "TryBind.") || code_starts(code, "Forbidden") ||
	    code_starts(code, "NoPermission") ||
	    code_starts(code, "InvalidAppInstanceGroup") ||
	    (error && (strcmp(error, CLOUDAPP_ERROR_PERMISSION_DENIED) == 0 ||
		       strcmp(error, CLOUDAPP_ERROR_INVALID_END_USER_ID) == 0 ||
		       strcmp(error, CLOUDAPP_ERROR_NO_SUCH_USER) == 0)))
		return "Your account is not set up for this cloud app. Please "
		       "contact your administrator.";
	if (code_starts(code, "SignatureDoesNotMatch") ||
	    code_starts(code, "InvalidAccessKeyId") ||
	    code_starts(code, "InvalidSecurityToken") ||
	    code_starts(code, "MissingSecurityToken") ||
	    code_starts(code, "InvalidTimeStamp"))
		return "This computer's cloud credentials were rejected. Please "
		       "contact your administrator.";
	if (error && strcmp(error, CLOUDAPP_ERROR_TIMEOUT) == 0)
		return "The cloud app did not start in time. Please try again.";
	if (error && strcmp(error, CLOUDAPP_ERROR_UNTRUSTED_ENDPOINT) == 0)
		return "This computer does not trust the cloud service's "
		       "certificate. Please contact your administrator.";
	if (error && strcmp(error, CLOUDAPP_ERROR_CLOUD) == 0 && !code)
		return "The cloud service cannot be reached. Please check the "
		       "network connection.";
	if (error && strcmp(error, CLOUDAPP_ERROR_LIMIT_EXCEEDED) == 0)
		return "Too many attempts in a short time. Please wait a "
		       "minute and try again.";
	return "Your cloud app could not be started. Please contact your "
	       "administrator.";
}
