// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the YAML config loader (LoadConfigString: yaml-cpp, then every section's
// validation) on arbitrary text. A valid config's routes and redaction are then built into
// a RouteTemplater and a Redactor and run once, since the loader promises they are valid.
// Oracle: no crash, no escaped exception (the loader returns a Result), sanitizers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "userspace/config/config.h"
#include "userspace/enrich/route_templater.h"
#include "userspace/export/redact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  redtap::Result<redtap::config::Config> r = redtap::config::LoadConfigString(text, "fuzz.yaml");
  if (!r.ok()) {
    if (r.error().empty()) __builtin_trap();  // an error always says what is wrong
    return 0;
  }
  const redtap::config::Config& cfg = r.value();
  const redtap::enrich::RouteTemplater routes(cfg.routes);
  std::string out;
  routes.Template("svc", "/api/orders/123/items?x=1", &out);
  routes.Template("", "/static/a/b/c", &out);
  const redtap::exporter::Redactor redactor(cfg.redaction);
  out = redactor.RedactQuery("password=x&token=y&a=4111111111111111");
  return 0;
}
