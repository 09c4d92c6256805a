/* daemon/tls.c: the TLS client context with instantd's trust rule (see tls.h). */
#include "tls.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>

/* OpenSSL's hashed names: 8 hex digits, '.', a digit or more (CRLs have ".r"). */
static bool
hashed_name(const char *n)
{
	int i;

	for (i = 0; i < 8; i++)
		if (!isxdigit((unsigned char)n[i]))
			return false;
	if (n[8] != '.' || !isdigit((unsigned char)n[9]))
		return false;
	for (i = 10; n[i]; i++)
		if (!isdigit((unsigned char)n[i]))
			return false;
	return true;
}

/* Whether some directory of the colon-separated list holds a hashed name. */
static bool
dirs_hashed(const char *list)
{
	bool found = false;
	char *copy = strdup(list), *save = NULL, *d;

	if (copy == NULL)
		return false;
	for (d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		DIR *dir = opendir(d);
		struct dirent *e;

		if (dir == NULL)
			continue;
		while (!found && (e = readdir(dir)) != NULL)
			found = hashed_name(e->d_name);
		closedir(dir);
	}
	free(copy);
	return found;
}

/* The system store, as tls.h says. A store that cannot be read leaves the
 * context trusting less (every chain then fails verification, reported as
 * such), as OpenSSL's own default does. */
static void
trust_system(SSL_CTX *ctx)
{
	const char *file = getenv(X509_get_default_cert_file_env());
	const char *dirs = getenv(X509_get_default_cert_dir_env());

	if (dirs == NULL || *dirs == '\0')
		dirs = X509_get_default_cert_dir();
	if (dirs_hashed(dirs))
		(void)SSL_CTX_load_verify_locations(ctx, NULL, dirs);
	else if (file == NULL || *file == '\0')
		file = X509_get_default_cert_file();
	if (file && *file)
		(void)SSL_CTX_load_verify_locations(ctx, file, NULL);
	ERR_clear_error();
}

int
tls_client_ctx_new(const char *ca_file, SSL_CTX **ret)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return -ENOMEM;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* as libwebsockets sets its own client contexts */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	trust_system(ctx);
	if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return -ENOENT;
	}
	*ret = ctx;
	return 0;
}
