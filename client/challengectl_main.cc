// challengectl: the admin and MDM command line of the SCEP challenge
// authority.
#include <iostream>
#include <string>
#include <vector>

#include "client/challengectl.h"

int main(int argc, char** argv) {
  return scepca::RunChallengectl(
      std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
