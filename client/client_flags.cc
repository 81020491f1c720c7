#include "client/client_flags.h"

namespace scepca {

void AddClientFlags(FlagSet* flags, ClientFlagValues* values) {
  flags->String("tls-ca", &values->tls_ca,
                "PEM CAs to trust for the authority (enables TLS)");
  flags->String("tls-cert", &values->tls_cert,
                "PEM client certificate for mutual TLS (with --tls-key)");
  flags->String("tls-key", &values->tls_key,
                "PEM private key of the client certificate (mode 0600)");
  flags->String("tls-server-name", &values->tls_server_name,
                "name to expect in the authority's certificate");
  flags->String("token-file", &values->token_file,
                "file (mode 0600) with a bearer token for the authority");
}

}  // namespace scepca
