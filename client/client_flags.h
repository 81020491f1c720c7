// File: client_flags.h
// The connection flags every client command shares (--tls-ca, --tls-cert,
// --tls-key, --tls-server-name, --token-file), registered in one place so
// that challengectl and challenge-verify spell and document them alike.
#ifndef SCEPCA_CLIENT_CLIENT_FLAGS_H_
#define SCEPCA_CLIENT_CLIENT_FLAGS_H_

#include "client/challenge_client.h"
#include "service/flags/flag_set.h"

namespace scepca {

// Registers the flags on `flags`, writing into `values` (which must outlive
// `flags`). ApplyClientFlags() turns the values into ClientOptions.
void AddClientFlags(FlagSet* flags, ClientFlagValues* values);

}  // namespace scepca

#endif  // SCEPCA_CLIENT_CLIENT_FLAGS_H_
