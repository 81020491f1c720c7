#include "service/core/clock.h"

namespace scepca {

Clock* RealClock::Get() {
  static RealClock* const clock = new RealClock();
  return clock;
}

}  // namespace scepca
