// SPDX-License-Identifier: Apache-2.0
// `redtap doctor`: what of redtap works on this host, and why not, without starting capture.
#pragma once

#include <string>
#include <vector>

namespace redtap {

struct DoctorCheck {
  std::string name;
  bool ok = false;
  bool required = true;  // capture cannot work without it
  std::string detail;
};

/// Runs every check (loads and attaches one probe of each hook type for a moment).
std::vector<DoctorCheck> RunDoctor();
/// Prints one line per check; returns the process exit code (0 when capture can work).
int PrintDoctor(const std::vector<DoctorCheck>& checks);

}  // namespace redtap

extern "C" void redtap_doctor_uprobe_target();
