#ifndef TE_COPENSSL_SHIM_H
#define TE_COPENSSL_SHIM_H
// libcrypto only: EVP ciphers (AES-256-GCM), MACs (HMAC-SHA256), KDFs (HKDF), signatures (Ed25519).
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#endif
