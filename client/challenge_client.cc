#include "client/challenge_client.h"

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace scepca {

namespace v1 = ::scep::challenge::v1;

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

namespace {

absl::StatusOr<std::string> ReadFileChecked(const std::string& path,
                                            absl::string_view flag,
                                            bool secret) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (secret && (st.st_mode & 077) != 0)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path,
                     " must not be accessible to group or others (chmod 600)"));
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 && text.size() < (1 << 20)) {
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

}  // namespace

absl::Status ApplyClientFlags(const ClientFlagValues& flags,
                              ClientOptions* options) {
  if (flags.tls_cert.empty() != flags.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!flags.tls_cert.empty() && flags.tls_ca.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert needs --tls-ca (the CA of the server's certificate)");
  }
  if (!flags.tls_ca.empty()) {
    absl::StatusOr<std::string> ca =
        ReadFileChecked(flags.tls_ca, "--tls-ca", false);
    if (!ca.ok()) return ca.status();
    options->tls_ca_pem = *std::move(ca);
  }
  if (!flags.tls_cert.empty()) {
    absl::StatusOr<std::string> cert =
        ReadFileChecked(flags.tls_cert, "--tls-cert", false);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadFileChecked(flags.tls_key, "--tls-key", true);
    if (!key.ok()) return key.status();
    options->tls_cert_pem = *std::move(cert);
    options->tls_key_pem = *std::move(key);
  }
  options->tls_server_name = flags.tls_server_name;
  if (!flags.token_file.empty()) {
    absl::StatusOr<std::string> token =
        ReadFileChecked(flags.token_file, "--token-file", true);
    if (!token.ok()) return token.status();
    std::string value(absl::StripAsciiWhitespace(*token));
    if (value.empty() || value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          "--token-file must hold one line: the token");
    }
    options->bearer_token = std::move(value);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChallengeClient>> ChallengeClient::Create(
    const ClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("server address is empty");
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.tls_ca_pem.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;
    ssl.pem_cert_chain = options.tls_cert_pem;
    ssl.pem_private_key = options.tls_key_pem;
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, creds, args);
  return std::unique_ptr<ChallengeClient>(
      new ChallengeClient(options, std::move(channel)));
}

ChallengeClient::ChallengeClient(const ClientOptions& options,
                                 std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::ChallengeAuthority::NewStub(channel_)) {}

void ChallengeClient::PrepareContext(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  if (!options_.bearer_token.empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options_.bearer_token));
  }
}

#define SCEPCA_CLIENT_CALL(Method, Request, Response)                        \
  absl::StatusOr<Response> ChallengeClient::Method(const Request& request) { \
    grpc::ClientContext context;                                             \
    PrepareContext(&context);                                                \
    Response response;                                                       \
    grpc::Status status = stub_->Method(&context, request, &response);       \
    if (!status.ok()) return FromGrpcStatus(status);                         \
    return response;                                                         \
  }

SCEPCA_CLIENT_CALL(IssueChallenge, v1::IssueChallengeRequest,
                   v1::IssueChallengeResponse)
SCEPCA_CLIENT_CALL(Validate, v1::ValidateRequest, v1::ValidateResponse)
SCEPCA_CLIENT_CALL(Revoke, v1::RevokeRequest, v1::RevokeResponse)
SCEPCA_CLIENT_CALL(GetChallenge, v1::GetChallengeRequest, v1::ChallengeInfo)
SCEPCA_CLIENT_CALL(ListChallenges, v1::ListChallengesRequest,
                   v1::ListChallengesResponse)

SCEPCA_CLIENT_CALL(NotifyOutcome, v1::NotifyOutcomeRequest,
                   v1::NotifyOutcomeResponse)

SCEPCA_CLIENT_CALL(GetStats, v1::GetStatsRequest, v1::Stats)

#undef SCEPCA_CLIENT_CALL

absl::StatusOr<bool> ChallengeClient::CheckHealth() {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("scep.challenge.v1.ChallengeAuthority");
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace scepca
