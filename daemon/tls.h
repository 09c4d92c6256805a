/* daemon/tls.h: the one rule by which instantd trusts a server's certificate,
 * shared by the upstream session, sign-in and `instantctl doctor`. */
#ifndef INSTANTD_TLS_H
#define INSTANTD_TLS_H

#include <openssl/ssl.h>

/*
 * A new TLS client context (the caller owns it; SSL_CTX_free) that verifies the
 * peer against the system's CA store plus ca_file (a PEM file, or NULL).
 *
 * The system store is OpenSSL's default, as SSL_CTX_set_default_verify_paths
 * reads it (SSL_CERT_FILE and SSL_CERT_DIR honoured), with one difference:
 * when the certificate directory holds hashed names (Debian's /etc/ssl/certs,
 * kept by update-ca-certificates from the same certificates as the bundle),
 * only the directory is used, and a certificate is read when a chain needs it.
 * Parsing the whole bundle up front costs about 60 ms of OpenSSL 3 CPU, spent
 * before the daemon could answer its first program. The bundle is read when
 * SSL_CERT_FILE names it or when the directory has no hashed names.
 *
 * -ENOMEM, or -ENOENT when ca_file cannot be read as PEM certificates.
 */
int tls_client_ctx_new(const char *ca_file, SSL_CTX **ret);

#endif
