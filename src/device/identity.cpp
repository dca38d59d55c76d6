// The agent's credentials: a self-signed certificate (an EC P-256 key, ten years) and a random
// token, made once and kept with owner-only permissions.
#include <fcntl.h>
#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "device/device.h"
#include "device/tls.h"

namespace gos::device {

namespace fs = std::filesystem;

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

[[noreturn]] void fail(const std::string& what) {
  throw DeviceError(fmt::format("cannot make the agent's identity: {}", what));
}

// Writes through a file created 0600, so that the secret is never readable by others, even briefly.
void write_private(const fs::path& file, const std::string& contents) {
  const fs::path partial = file.string() + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fail(fmt::format("cannot write {}", file.string()));
  const bool written = ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!written) fail(fmt::format("cannot write {}", file.string()));
  fs::rename(partial, file);
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

template <typename Write>
std::string pem(Write write) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || !write(bio)) {
    BIO_free(bio);
    fail("OpenSSL could not write PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(size));
  BIO_free(bio);
  return text;
}

void make_certificate(const fs::path& certificate, const fs::path& key) {
  KeyPtr pkey(EVP_EC_gen("P-256"));
  if (!pkey) fail("OpenSSL could not generate an EC key");
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // a positive serial
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 60 * 60);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("gos agent"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!X509_sign(cert.get(), pkey.get(), EVP_sha256())) fail("OpenSSL could not sign the certificate");
  write_private(key, pem([&](BIO* bio) { return PEM_write_bio_PrivateKey(bio, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1; }));
  write_private(certificate, pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()) == 1; }));
}

std::string random_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) fail("OpenSSL has no randomness");
  std::string token;
  for (unsigned char byte : bytes) token += fmt::format("{:02x}", byte);
  return token;
}

}  // namespace

std::string fingerprint_of(X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!certificate || X509_digest(certificate, EVP_sha256(), digest, &size) != 1) return "";
  std::string text;
  for (unsigned int i = 0; i < size; ++i) text += fmt::format("{}{:02X}", i ? ":" : "", digest[i]);
  return text;
}

std::string certificate_fingerprint(const fs::path& certificate) {
  FILE* file = std::fopen(certificate.c_str(), "r");
  if (!file) throw DeviceError(fmt::format("cannot read the certificate {}", certificate.string()));
  CertPtr cert(PEM_read_X509(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (!cert) throw DeviceError(fmt::format("{} is not a PEM certificate: remove it and the key beside it, and the agent makes new ones",
                                           certificate.string()));
  return fingerprint_of(cert.get());
}

AgentIdentity ensure_agent_identity(const fs::path& folder) {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) fail(fmt::format("cannot create {}: {}", folder.string(), error.message()));
  ::chmod(folder.c_str(), 0700);
  AgentIdentity identity{folder / "certificate.pem", folder / "key.pem", folder / "token", "", ""};
  if (!fs::exists(identity.certificate) || !fs::exists(identity.key)) make_certificate(identity.certificate, identity.key);
  if (!fs::exists(identity.token_file)) write_private(identity.token_file, random_token() + "\n");
  identity.token = read_all(identity.token_file);
  while (!identity.token.empty() && std::isspace(static_cast<unsigned char>(identity.token.back()))) identity.token.pop_back();
  if (identity.token.size() < 16) {
    throw DeviceError(fmt::format("the token in {} is under 16 characters: remove the file and the agent makes a new one",
                                  identity.token_file.string()));
  }
  identity.fingerprint = certificate_fingerprint(identity.certificate);
  return identity;
}

}  // namespace gos::device

namespace gos::device {

bool equal_in_constant_time(std::string_view a, std::string_view b) {
  unsigned char da[EVP_MAX_MD_SIZE], db[EVP_MAX_MD_SIZE];
  unsigned int na = 0, nb = 0;
  if (EVP_Digest(a.data(), a.size(), da, &na, EVP_sha256(), nullptr) != 1 ||
      EVP_Digest(b.data(), b.size(), db, &nb, EVP_sha256(), nullptr) != 1 || na != nb) {
    return false;
  }
  return CRYPTO_memcmp(da, db, na) == 0;
}

}  // namespace gos::device
