#pragma once
// Internal to the device part: OpenSSL helpers the agent and the client share.
#include <openssl/x509.h>

#include <string>
#include <string_view>

namespace gos::device {

// SHA-256 of the certificate's DER, upper-case hex pairs joined by ':' ("" for none).
std::string fingerprint_of(X509* certificate);

// a == b in time that does not depend on where they differ (nor on their lengths: both are hashed
// first), for tokens and fingerprints.
bool equal_in_constant_time(std::string_view a, std::string_view b);

}  // namespace gos::device
